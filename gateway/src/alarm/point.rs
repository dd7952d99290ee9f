//! The alarm state machine of one point: pure, deterministic and cheap.
//!
//! A point alarms for up to five conditions, each raised and cleared on its own:
//! - [`Condition::Limit`]: a ladder of limits, each above or below a value, with a level.
//!   Every limit has hysteresis: once crossed it stays in force until the value is back on
//!   the safe side by more than the deadband ([`Limit::cleared`]). The condition's raw level
//!   is the highest level in force. A higher level is raised or escalated to once the raw
//!   level has been at least that high for `on_delay`; a lower level (or normal) is
//!   de-escalated or cleared to once the raw level has been at most that high for
//!   `off_delay`. So noise inside the deadband yields nothing, a slow crossing yields one
//!   event per level, and a jump goes straight to the level it reached.
//! - [`Condition::Rate`]: the value changed by at least `change` (either way) against a
//!   reading of the last `window`; cleared once the change is below `change - deadband`.
//!   The window is kept in 15 slots of `window / 15`, so the look-back reaches at least
//!   `window` and at most one slot further. The event's `value` is the signed change, its
//!   `limit` the configured change. On/off delays apply.
//! - [`Condition::CommLoss`]: only failed polls (timeout, crc, framing, exception, refused
//!   or lost connection) for `after` since the last reading with a value (or since the first
//!   reading without one, if there never was one): raised on such a failed poll, cleared by
//!   the next reading with a value. Its own `after` is its delay.
//! - [`Condition::SensorFault`]: a bad reading from a device that answered (reason
//!   `sensor_fault`, or a `status_code` the value cannot be used with); cleared by a
//!   reading that is not one. On/off delays apply.
//! - [`Condition::OutOfRange`]: a reading with reason `out_of_range`; cleared by a reading
//!   that is not one. On/off delays apply.
//!
//! A failed poll says nothing about the value or the sensor: it leaves the limit, rate,
//! sensor-fault and out-of-range states exactly as they are. Limits and rate look only at
//! readings with a finite value that are not bad.
//!
//! Time comes only from the readings' acquisition time stamps, never from the clock, so a
//! sequence of readings always gives the same events. [`PointAlarm::evaluate`] does not
//! allocate when nothing changes (the common case).

use std::time::Duration;

use firmware_config::alarm::{AlarmSpec, Direction, Level, Limit, RateDirection};
use hazgate_wire::{Acknowledgement, Quality, Reason};
use serde::{Deserialize, Serialize};

/// What makes a point alarm (`limit`, `rate`, `comm_loss`, `sensor_fault`, `out_of_range`;
/// the wire's type, which also names roll-ups) and the kind of change (`raise`, `escalate`,
/// `deescalate`, `clear`).
pub use hazgate_wire::{Condition, EventKind};

/// A time that has not come: the state does not hold.
const NEVER: i64 = i64::MAX;
/// Since before the first reading.
const EVER: i64 = i64::MIN;
/// A raw level no reading gives: the limit state is yet to be seen.
const UNKNOWN: u8 = u8::MAX;
/// Slots of the rate window: the current one and the 15 before it.
const SLOTS: usize = 16;

/// One change of one condition of one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub condition: Condition,
    pub kind: EventKind,
    /// The level before (`None`: it was normal).
    pub previous: Option<Level>,
    /// The level after (`None` after a clear).
    pub level: Option<Level>,
    /// The reading's value (for a rate, the change); `None` when it had none.
    pub value: Option<f64>,
    /// The value that crossed into the new level (limits: the reading at which the level
    /// was first reached, before the delay); otherwise the same as `value`.
    pub crossed: Option<f64>,
    /// The limit of the new level, or of the cleared one (for a rate, the change).
    pub limit: Option<f64>,
    /// The label of that limit.
    pub label: Option<String>,
    /// Acquisition time of the reading that caused it, ms UTC.
    pub ts: i64,
    /// When its occurrence was raised (ms UTC): with the point and condition, the
    /// occurrence's id.
    pub opened: i64,
}

/// One active alarm of a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub condition: Condition,
    pub level: Level,
    /// When it reached this level (the event's time).
    pub since: i64,
    /// The value, limit and label of the event that set this level.
    pub value: Option<f64>,
    pub crossed: Option<f64>,
    pub limit: Option<f64>,
    pub label: Option<String>,
    /// When the occurrence was raised.
    pub opened: i64,
    /// Who acknowledged it at this level or a higher one.
    pub ack: Option<Acknowledgement>,
}

/// A raised condition: its level and what the event that set it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Raised {
    level: Level,
    since: i64,
    value: Option<f64>,
    #[serde(default)]
    crossed: Option<f64>,
    limit: Option<f64>,
    label: Option<String>,
    /// When the occurrence (raise to clear) began; 0 in states saved before it was kept
    /// (restored as `since`).
    #[serde(default)]
    opened: i64,
    /// Acknowledged (预警叫应); an escalation asks again.
    #[serde(default)]
    ack: Option<Acknowledgement>,
}

/// A condition with one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flag {
    /// The condition as the last reading that could tell saw it (with hysteresis).
    raw: bool,
    /// Since when `raw` has held.
    since: i64,
    active: Option<Raised>,
}

impl Default for Flag {
    fn default() -> Self {
        Flag {
            raw: false,
            since: EVER,
            active: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LimitState {
    /// Bit i: limit i is in force (crossed, and not yet cleared by more than the deadband).
    inforce: u64,
    /// The highest level in force: 0 normal, 1 blue … 4 red.
    raw: u8,
    /// `up[k - 1]`: since when the raw level has been at least k (`NEVER`: it is not).
    up: [i64; 4],
    /// `down[k]`: since when the raw level has been at most k (`NEVER`: it is not).
    down: [i64; 4],
    /// The values at which `up` and `down` started: what an event reports as crossed.
    #[serde(default)]
    up_value: [f64; 4],
    #[serde(default)]
    down_value: [f64; 4],
    active: Option<Raised>,
}

impl LimitState {
    fn new() -> Self {
        LimitState {
            inforce: 0,
            raw: 0,
            up: [NEVER; 4],
            down: [EVER; 4],
            up_value: [0.0; 4],
            down_value: [0.0; 4],
            active: None,
        }
    }
}

/// The lowest and highest value seen in one slot of the rate window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Slot {
    /// Slot number: ts / width (`EVER`: empty).
    n: i64,
    lo: f64,
    hi: f64,
}

const EMPTY: Slot = Slot {
    n: EVER,
    lo: 0.0,
    hi: 0.0,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RateState {
    /// Width of a slot, ms.
    width: i64,
    slots: [Slot; SLOTS],
    flag: Flag,
}

impl RateState {
    fn new(window: Duration) -> Self {
        RateState {
            width: slot_width(window),
            slots: [EMPTY; SLOTS],
            flag: Flag::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CommState {
    /// Start of the silence: the last reading with a value, or the first reading of all if
    /// none had one (`NEVER`: no reading yet).
    clock: i64,
    active: Option<Raised>,
}

/// What must survive a restart: the raised conditions, the hysteresis and the pending
/// delays, so that a restart mid-alarm neither raises again nor clears by mistake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointState {
    /// Fingerprint of the ladder and deadband the limit state belongs to.
    ladder: u64,
    limit: LimitState,
    rate: Option<Box<RateState>>,
    comm: CommState,
    fault: Flag,
    range: Flag,
    /// In calibration (readings flagged), with the too-long alarm.
    #[serde(default)]
    calibration: Flag,
    /// Readings flagged `stuck_value` (AQ 1029 false data).
    #[serde(default)]
    stuck: Flag,
    /// Readings flagged `impossible_jump` (AQ 1029 false data).
    #[serde(default)]
    jump: Flag,
}

/// What a reading's flags mean for its point's conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flagged {
    /// Test gas on the sensor: not judged, the calibration allowance runs.
    pub calibration: bool,
    /// Unchanged over the configured samples: judged, and an equipment alarm.
    pub stuck: bool,
    /// Faster than physically possible: not judged, and an equipment alarm.
    pub jump: bool,
}

/// Every condition a point's state machine raises.
const POINT_CONDITIONS: [Condition; 8] = [
    Condition::CommLoss,
    Condition::SensorFault,
    Condition::OutOfRange,
    Condition::Calibration,
    Condition::StuckValue,
    Condition::ImpossibleJump,
    Condition::Limit,
    Condition::Rate,
];

impl PointState {
    /// Where a condition's raised occurrence is kept (`None`: not a point condition, or
    /// no rate configured).
    fn slot_mut(&mut self, condition: Condition) -> Option<&mut Option<Raised>> {
        Some(match condition {
            Condition::CommLoss => &mut self.comm.active,
            Condition::SensorFault => &mut self.fault.active,
            Condition::OutOfRange => &mut self.range.active,
            Condition::Calibration => &mut self.calibration.active,
            Condition::StuckValue => &mut self.stuck.active,
            Condition::ImpossibleJump => &mut self.jump.active,
            Condition::Limit => &mut self.limit.active,
            Condition::Rate => &mut self.rate.as_mut()?.flag.active,
            _ => return None,
        })
    }

    /// Times saved by another run are on that run's monotonic scale; any that lie ahead
    /// of `clock` (the clock stepped back between runs) restart from now, so a delay can
    /// never wait longer than configured.
    fn clamp_times(&mut self, clock: i64) {
        let clamp = |t: &mut i64| {
            if *t != NEVER && *t > clock {
                *t = clock;
            }
        };
        self.limit.up.iter_mut().for_each(clamp);
        self.limit.down.iter_mut().for_each(clamp);
        clamp(&mut self.comm.clock);
        clamp(&mut self.fault.since);
        clamp(&mut self.range.since);
        clamp(&mut self.calibration.since);
        clamp(&mut self.stuck.since);
        clamp(&mut self.jump.since);
        if let Some(r) = &mut self.rate {
            clamp(&mut r.flag.since);
            let now = clock.div_euclid(r.width);
            for slot in r.slots.iter_mut().filter(|s| s.n > now) {
                *slot = EMPTY;
            }
        }
    }
}

/// The alarm state machine of one point.
#[derive(Debug, Clone)]
pub struct PointAlarm {
    spec: AlarmSpec,
    on: i64,
    off: i64,
    comm_after: i64,
    /// A raised rate clears once the change is below this.
    rate_clear: f64,
    st: PointState,
    /// Restored: check the state against the settings on the next reading.
    stale: bool,
    /// Restored under another ladder: limits up to this level (code) are taken as in force
    /// unless cleared, on the next reading with a value.
    seed: u8,
}

/// Level code: 0 normal, 1 blue … 4 red.
fn code(l: Level) -> u8 {
    match l {
        Level::Blue => 1,
        Level::Yellow => 2,
        Level::Orange => 3,
        Level::Red => 4,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn slot_width(window: Duration) -> i64 {
    let w = ms(window);
    let k = SLOTS as i64 - 1;
    (w / k + i64::from(w % k != 0)).max(1)
}

/// A failed poll: the device (or the line to it) did not give an answer.
fn is_comm_failure(r: Reason) -> bool {
    matches!(
        r,
        Reason::Timeout
            | Reason::Crc
            | Reason::Framing
            | Reason::Exception
            | Reason::ConnectionRefused
            | Reason::ConnectionLost
    )
}

/// FNV-1a over what the limit state depends on.
fn fingerprint(spec: &AlarmSpec) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(spec.deadband.to_bits());
    for l in &spec.limits {
        eat(u64::from(l.direction == Direction::Below));
        eat(l.value.to_bits());
        eat(u64::from(code(l.level)));
    }
    h
}

#[derive(Clone, Copy)]
struct At {
    /// Wall time of the reading: stamps events.
    ts: i64,
    /// Monotonic time of the reading: every duration (delays, rate windows) runs on it,
    /// so a step of the wall clock neither delays nor hastens an alarm.
    clock: i64,
    on: i64,
    off: i64,
}

/// What an event of a condition says besides its levels.
struct Says<'a> {
    value: Option<f64>,
    limit: Option<f64>,
    label: Option<&'a String>,
}

fn raise(
    slot: &mut Option<Raised>,
    condition: Condition,
    level: Level,
    ts: i64,
    says: Says,
    out: &mut Vec<Transition>,
) {
    let previous = slot.as_ref().map(|r| r.level);
    let kind = match previous {
        None => EventKind::Raise,
        Some(p) if level > p => EventKind::Escalate,
        Some(_) => EventKind::Deescalate,
    };
    // One occurrence from raise to clear; a higher level must be answered again.
    let opened = slot.as_ref().map_or(ts, |r| r.opened);
    let ack = slot
        .as_mut()
        .and_then(|r| r.ack.take())
        .filter(|_| kind == EventKind::Deescalate);
    let label = says.label.cloned();
    out.push(Transition {
        condition,
        kind,
        previous,
        level: Some(level),
        value: says.value,
        crossed: says.value,
        limit: says.limit,
        label: label.clone(),
        ts,
        opened,
    });
    *slot = Some(Raised {
        level,
        since: ts,
        value: says.value,
        crossed: says.value,
        limit: says.limit,
        label,
        opened,
        ack,
    });
}

fn clear(
    slot: &mut Option<Raised>,
    condition: Condition,
    value: Option<f64>,
    ts: i64,
    out: &mut Vec<Transition>,
) {
    if let Some(r) = slot.take() {
        out.push(Transition {
            condition,
            kind: EventKind::Clear,
            previous: Some(r.level),
            level: None,
            value,
            crossed: value,
            limit: r.limit,
            label: r.label,
            ts,
            opened: r.opened,
        });
    }
}

/// One step of a one-level condition with on/off delays.
fn step_flag(
    flag: &mut Flag,
    condition: Condition,
    level: Level,
    raw: bool,
    at: At,
    says: Says,
    out: &mut Vec<Transition>,
) {
    if raw != flag.raw {
        flag.raw = raw;
        flag.since = at.clock;
    }
    let held = at.clock.saturating_sub(flag.since);
    match (&flag.active, raw) {
        (None, true) if held >= at.on => {
            raise(&mut flag.active, condition, level, at.ts, says, out)
        }
        (Some(_), false) if held >= at.off => {
            clear(&mut flag.active, condition, says.value, at.ts, out)
        }
        _ => {}
    }
}

/// Moves a raised condition to the level now configured (or clears it if none is).
fn relevel(
    slot: &mut Option<Raised>,
    condition: Condition,
    want: Option<Level>,
    ts: i64,
    value: Option<f64>,
    out: &mut Vec<Transition>,
) {
    let Some(r) = slot else { return };
    match want {
        None => clear(slot, condition, value, ts, out),
        Some(level) if level != r.level => {
            let (limit, label) = (r.limit, r.label.clone());
            let says = Says {
                value,
                limit,
                label: label.as_ref(),
            };
            raise(slot, condition, level, ts, says, out);
        }
        Some(_) => {}
    }
}

impl PointAlarm {
    pub fn new(spec: AlarmSpec) -> Self {
        let rate_clear = spec.rate.as_ref().map_or(0.0, |r| {
            if spec.deadband > 0.0 {
                // Never at or below zero, or a raised rate could never clear.
                (r.change - spec.deadband).max(r.change / 2.0)
            } else {
                r.change
            }
        });
        let st = PointState {
            ladder: fingerprint(&spec),
            limit: LimitState::new(),
            rate: spec
                .rate
                .as_ref()
                .map(|r| Box::new(RateState::new(r.window))),
            comm: CommState {
                clock: NEVER,
                active: None,
            },
            fault: Flag::default(),
            range: Flag::default(),
            calibration: Flag::default(),
            stuck: Flag::default(),
            jump: Flag::default(),
        };
        PointAlarm {
            on: ms(spec.on_delay),
            off: ms(spec.off_delay),
            comm_after: spec.comm_loss.map_or(0, |(after, _)| ms(after)),
            rate_clear,
            spec,
            st,
            stale: false,
            seed: 0,
        }
    }

    /// A point alarm that goes on from a snapshot. Under changed settings it adapts on the
    /// next reading: conditions no longer configured clear, a changed level is moved to, and
    /// under a changed ladder the limits up to the raised level count as in force unless
    /// the value is past their deadband.
    pub fn restore(spec: AlarmSpec, state: PointState) -> Self {
        let mut p = PointAlarm::new(spec);
        let mut st = state;
        if st.ladder != p.st.ladder {
            let active = st.limit.active.take();
            p.seed = active.as_ref().map_or(0, |a| code(a.level));
            // Unknown until the next reading with a value (UNKNOWN forces the update).
            st.limit = LimitState {
                raw: UNKNOWN,
                up: [NEVER; 4],
                down: [NEVER; 4],
                active,
                ..LimitState::new()
            };
            st.ladder = p.st.ladder;
        }
        if let (Some(old), Some(new)) = (&mut st.rate, &p.st.rate) {
            if old.width != new.width {
                old.width = new.width;
                old.slots = [EMPTY; SLOTS];
            }
        }
        // States saved before occurrences were kept: the occurrence began at `since`.
        for c in POINT_CONDITIONS {
            if let Some(Some(r)) = st.slot_mut(c) {
                if r.opened == 0 {
                    r.opened = r.since;
                }
            }
        }
        p.st = st;
        p.stale = true;
        p
    }

    pub fn snapshot(&self) -> PointState {
        self.st.clone()
    }

    pub fn spec(&self) -> &AlarmSpec {
        &self.spec
    }

    /// Feeds one reading: `ts` its acquisition time (ms UTC), `value` its number (`None`
    /// when it has none), `quality` as read. Returns the transitions it causes, in the
    /// order comm loss, sensor fault, out of range, limit, rate; usually none, and then
    /// without allocating.
    pub fn evaluate(&mut self, ts: i64, value: Option<f64>, quality: &Quality) -> Vec<Transition> {
        self.evaluate_timed(ts, ts, value, quality)
    }

    /// [`PointAlarm::evaluate`] with the reading's monotonic time `clock` (ms, on the wall
    /// clock's scale at process start) beside its wall time `ts`: delays, comm loss and
    /// rate windows are measured on `clock`, events are stamped with `ts`.
    pub fn evaluate_timed(
        &mut self,
        ts: i64,
        clock: i64,
        value: Option<f64>,
        quality: &Quality,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let (bad, reason) = match quality {
            Quality::Good => (false, None),
            Quality::Uncertain { reason, .. } => (false, Some(*reason)),
            Quality::Bad { reason, .. } => (true, Some(*reason)),
        };
        let v = if bad {
            None
        } else {
            value.filter(|x| x.is_finite())
        };
        if self.stale {
            self.st.clamp_times(clock);
            self.reconcile(ts, v, &mut out);
        }
        let failed = bad && reason.is_some_and(is_comm_failure);
        let at = At {
            ts,
            clock,
            on: self.on,
            off: self.off,
        };

        if let Some((_, level)) = self.spec.comm_loss {
            let c = &mut self.st.comm;
            if v.is_some() {
                c.clock = clock;
                clear(&mut c.active, Condition::CommLoss, v, ts, &mut out);
            } else {
                if c.clock == NEVER {
                    c.clock = clock;
                }
                if failed && c.active.is_none() && clock.saturating_sub(c.clock) >= self.comm_after
                {
                    let says = Says {
                        value: None,
                        limit: None,
                        label: None,
                    };
                    raise(
                        &mut c.active,
                        Condition::CommLoss,
                        level,
                        ts,
                        says,
                        &mut out,
                    );
                }
            }
        }
        if !failed {
            if let Some(level) = self.spec.sensor_fault {
                // The device answered but its value cannot be used (a fault status, an NE43
                // fault current, an invalid decimals register): never silently quiet.
                let raw =
                    bad && reason.is_some_and(|r| !is_comm_failure(r) && r != Reason::OutOfRange);
                let says = Says {
                    value: v,
                    limit: None,
                    label: None,
                };
                let f = &mut self.st.fault;
                step_flag(f, Condition::SensorFault, level, raw, at, says, &mut out);
            }
            if let Some(level) = self.spec.out_of_range {
                let raw = reason == Some(Reason::OutOfRange);
                let says = Says {
                    value: v,
                    limit: None,
                    label: None,
                };
                let f = &mut self.st.range;
                step_flag(f, Condition::OutOfRange, level, raw, at, says, &mut out);
            }
        }
        self.step_calibration(false, at, &mut out);
        if let Some(x) = v {
            if !self.spec.limits.is_empty() {
                self.step_limit(at, x, &mut out);
            }
            if let (Some(rate), Some(rs)) = (&self.spec.rate, &mut self.st.rate) {
                step_rate(rs, rate, self.rate_clear, at, x, &mut out);
            }
        }
        out
    }

    fn step_limit(&mut self, at: At, x: f64, out: &mut Vec<Transition>) {
        let spec = &self.spec;
        let st = &mut self.st.limit;
        let (ts, clock) = (at.ts, at.clock);
        let mut inforce = 0u64;
        let mut raw = 0u8;
        for (i, l) in spec.limits.iter().enumerate().take(64) {
            let bit = 1u64 << i;
            let was = st.inforce & bit != 0 || code(l.level) <= self.seed;
            if l.crossed(x) || (was && !l.cleared(x, spec.deadband)) {
                inforce |= bit;
                raw = raw.max(code(l.level));
            }
        }
        self.seed = 0;
        st.inforce = inforce;
        if raw != st.raw {
            for k in 1..=4u8 {
                let i = usize::from(k - 1);
                if raw < k {
                    st.up[i] = NEVER;
                } else if st.up[i] == NEVER {
                    st.up[i] = clock;
                    st.up_value[i] = x;
                }
            }
            for k in 0..4u8 {
                let i = usize::from(k);
                if raw > k {
                    st.down[i] = NEVER;
                } else if st.down[i] == NEVER {
                    st.down[i] = clock;
                    st.down_value[i] = x;
                }
            }
            st.raw = raw;
        }
        let now = st.active.as_ref().map_or(0, |a| code(a.level));
        if raw == now {
            return;
        }
        // Up: the highest level held for on_delay. Down: the lowest held for off_delay.
        let target = if raw > now {
            (now + 1..=raw)
                .rev()
                .find(|&k| clock.saturating_sub(st.up[usize::from(k - 1)]) >= at.on)
        } else {
            (raw..now).find(|&k| clock.saturating_sub(st.down[usize::from(k)]) >= at.off)
        };
        // What crossed: the value at which the level now reached was first reached (up),
        // or at which the value first fell to it (down) — not the value after the delay.
        let crossed = match target {
            Some(k) if k > now => st.up_value[usize::from(k - 1)],
            Some(k) => st.down_value[usize::from(k)],
            None => x,
        };
        match target {
            None => return,
            Some(0) => clear(&mut st.active, Condition::Limit, Some(x), ts, out),
            Some(k) => {
                let level = Level::ALL[usize::from(k - 1)];
                let named = name_limit(&spec.limits, inforce, level);
                let says = Says {
                    value: Some(x),
                    limit: named.map(|l| l.value),
                    label: named.and_then(|l| l.label.as_ref()),
                };
                raise(&mut st.active, Condition::Limit, level, ts, says, out);
            }
        }
        if let Some(t) = out.last_mut() {
            t.crossed = Some(crossed);
        }
        if let Some(a) = &mut st.active {
            a.crossed = Some(crossed);
        }
    }

    /// A reading flagged as taken during calibration (AQ 1029): never judged against the
    /// limits or rate; the device answered (no comm loss); a calibration lasting longer
    /// than allowed is an alarm of its own.
    pub fn evaluate_calibrating(&mut self, ts: i64, clock: i64) -> Vec<Transition> {
        self.evaluate_withheld(ts, clock, true)
    }

    /// [`PointAlarm::evaluate_timed`] for a reading with flags (AQ 1029 伪数据标注):
    /// calibration and an impossible jump keep it from being judged; a stuck value is
    /// judged; each flag raises its equipment alarm while it lasts.
    pub fn evaluate_flagged(
        &mut self,
        ts: i64,
        clock: i64,
        value: Option<f64>,
        quality: &Quality,
        flagged: Flagged,
    ) -> Vec<Transition> {
        let mut out = if flagged.calibration || flagged.jump {
            self.evaluate_withheld(ts, clock, flagged.calibration)
        } else {
            self.evaluate_timed(ts, clock, value, quality)
        };
        // During calibration the sensor sees test gas: nothing to say about false data.
        if !flagged.calibration {
            self.step_false_data(ts, clock, value, flagged, &mut out);
        }
        out
    }

    fn step_false_data(
        &mut self,
        ts: i64,
        clock: i64,
        value: Option<f64>,
        flagged: Flagged,
        out: &mut Vec<Transition>,
    ) {
        // The flags are already judged over samples; only the clear waits the off-delay.
        let at = At {
            ts,
            clock,
            on: 0,
            off: self.off,
        };
        let says = || Says {
            value,
            limit: None,
            label: None,
        };
        if let Some(s) = self.spec.stuck {
            let f = &mut self.st.stuck;
            step_flag(
                f,
                Condition::StuckValue,
                s.level,
                flagged.stuck,
                at,
                says(),
                out,
            );
        }
        if let Some(j) = self.spec.jump {
            let f = &mut self.st.jump;
            step_flag(
                f,
                Condition::ImpossibleJump,
                j.level,
                flagged.jump,
                at,
                says(),
                out,
            );
        }
    }

    /// A reading that is not judged (calibration, an impossible value): the device
    /// answered (no comm loss); the calibration allowance runs while `calibrating`.
    fn evaluate_withheld(&mut self, ts: i64, clock: i64, calibrating: bool) -> Vec<Transition> {
        let mut out = Vec::new();
        if self.stale {
            self.st.clamp_times(clock);
            self.reconcile(ts, None, &mut out);
        }
        let c = &mut self.st.comm;
        c.clock = clock;
        clear(&mut c.active, Condition::CommLoss, None, ts, &mut out);
        let at = At {
            ts,
            clock,
            on: self.on,
            off: self.off,
        };
        self.step_calibration(calibrating, at, &mut out);
        out
    }

    fn step_calibration(&mut self, calibrating: bool, at: At, out: &mut Vec<Transition>) {
        let Some((max, level)) = self.spec.calibration.as_ref().map(|c| (c.max, c.level)) else {
            return;
        };
        let at = At {
            on: ms(max),
            off: 0,
            ..at
        };
        let says = Says {
            value: None,
            limit: None,
            label: None,
        };
        let f = &mut self.st.calibration;
        step_flag(f, Condition::Calibration, level, calibrating, at, says, out);
    }

    /// Brings a restored state in line with the settings, once.
    fn reconcile(&mut self, ts: i64, v: Option<f64>, out: &mut Vec<Transition>) {
        self.stale = false;
        let st = &mut self.st;
        let comm = self.spec.comm_loss.map(|(_, l)| l);
        relevel(&mut st.comm.active, Condition::CommLoss, comm, ts, v, out);
        let fault = self.spec.sensor_fault;
        relevel(
            &mut st.fault.active,
            Condition::SensorFault,
            fault,
            ts,
            v,
            out,
        );
        let range = self.spec.out_of_range;
        relevel(
            &mut st.range.active,
            Condition::OutOfRange,
            range,
            ts,
            v,
            out,
        );
        let calibration = self.spec.calibration.as_ref().map(|c| c.level);
        relevel(
            &mut st.calibration.active,
            Condition::Calibration,
            calibration,
            ts,
            v,
            out,
        );
        let stuck = self.spec.stuck.map(|s| s.level);
        relevel(
            &mut st.stuck.active,
            Condition::StuckValue,
            stuck,
            ts,
            v,
            out,
        );
        let jump = self.spec.jump.map(|j| j.level);
        relevel(
            &mut st.jump.active,
            Condition::ImpossibleJump,
            jump,
            ts,
            v,
            out,
        );
        if self.spec.limits.is_empty() {
            clear(&mut st.limit.active, Condition::Limit, v, ts, out);
        }
        match (&self.spec.rate, &mut st.rate) {
            (None, Some(rs)) => {
                clear(&mut rs.flag.active, Condition::Rate, None, ts, out);
                st.rate = None;
            }
            (Some(rate), None) => st.rate = Some(Box::new(RateState::new(rate.window))),
            (Some(rate), Some(rs)) => relevel(
                &mut rs.flag.active,
                Condition::Rate,
                Some(rate.level),
                ts,
                None,
                out,
            ),
            (None, None) => {}
        }
    }

    /// Highest active level over all conditions (`None`: normal).
    pub fn level(&self) -> Option<Level> {
        self.raised().filter_map(|(_, r)| r.map(|r| r.level)).max()
    }

    /// Whether a condition is raised, and at which level.
    pub fn condition(&self, condition: Condition) -> Option<Level> {
        self.raised()
            .find(|(c, _)| *c == condition)
            .and_then(|(_, r)| r.map(|r| r.level))
    }

    /// The active alarms, in the order comm loss, sensor fault, out of range, limit, rate.
    pub fn active(&self) -> Vec<Active> {
        self.raised()
            .filter_map(|(condition, r)| {
                r.map(|r| Active {
                    condition,
                    level: r.level,
                    since: r.since,
                    value: r.value,
                    crossed: r.crossed,
                    limit: r.limit,
                    label: r.label.clone(),
                    opened: r.opened,
                    ack: r.ack.clone(),
                })
            })
            .collect()
    }

    /// Acknowledges the occurrence of `condition` opened at `opened`: `Some(true)` when it
    /// is applied, `Some(false)` when it was acknowledged already, `None` when the point
    /// has no such occurrence (cleared, or never).
    pub fn acknowledge(
        &mut self,
        condition: Condition,
        opened: i64,
        ack: &Acknowledgement,
    ) -> Option<bool> {
        let r = self
            .st
            .slot_mut(condition)?
            .as_mut()
            .filter(|r| r.opened == opened)?;
        if r.ack.is_some() {
            return Some(false);
        }
        r.ack = Some(ack.clone());
        Some(true)
    }

    fn raised(&self) -> impl Iterator<Item = (Condition, Option<&Raised>)> {
        let st = &self.st;
        [
            (Condition::CommLoss, st.comm.active.as_ref()),
            (Condition::SensorFault, st.fault.active.as_ref()),
            (Condition::OutOfRange, st.range.active.as_ref()),
            (Condition::Calibration, st.calibration.active.as_ref()),
            (Condition::StuckValue, st.stuck.active.as_ref()),
            (Condition::ImpossibleJump, st.jump.active.as_ref()),
            (Condition::Limit, st.limit.active.as_ref()),
            (
                Condition::Rate,
                st.rate.as_ref().and_then(|r| r.flag.active.as_ref()),
            ),
        ]
        .into_iter()
    }
}

/// The limit an event at `level` names: one in force at that level, else the ladder's.
fn name_limit(limits: &[Limit], inforce: u64, level: Level) -> Option<&Limit> {
    let at_level = |(_, l): &(usize, &Limit)| l.level == level;
    let mut it = limits.iter().enumerate().take(64).filter(at_level);
    let first = it.clone().next().map(|(_, l)| l);
    it.find(|(i, _)| inforce & (1u64 << i) != 0)
        .map(|(_, l)| l)
        .or(first)
}

fn step_rate(
    rs: &mut RateState,
    rate: &firmware_config::alarm::RateLimit,
    clear_below: f64,
    at: At,
    x: f64,
    out: &mut Vec<Transition>,
) {
    let n = at.clock.div_euclid(rs.width);
    let slot = &mut rs.slots[n.rem_euclid(SLOTS as i64) as usize];
    if slot.n == n {
        slot.lo = slot.lo.min(x);
        slot.hi = slot.hi.max(x);
    } else {
        *slot = Slot { n, lo: x, hi: x };
    }
    let oldest = n.saturating_sub(SLOTS as i64 - 1);
    let (mut lo, mut hi) = (x, x);
    for s in &rs.slots {
        if s.n >= oldest && s.n <= n {
            lo = lo.min(s.lo);
            hi = hi.max(s.hi);
        }
    }
    let (rise, fall) = match rate.direction {
        RateDirection::Both => (x - lo, hi - x),
        RateDirection::Rising => (x - lo, 0.0),
        RateDirection::Falling => (0.0, hi - x),
    };
    let change = if rise >= fall { rise } else { -fall };
    let threshold = if rs.flag.raw {
        clear_below
    } else {
        rate.change
    };
    let raw = rise.max(fall) >= threshold;
    let says = Says {
        value: Some(change),
        limit: Some(rate.change),
        label: rate.label.as_ref(),
    };
    step_flag(
        &mut rs.flag,
        Condition::Rate,
        rate.level,
        raw,
        at,
        says,
        out,
    );
}

#[cfg(test)]
mod tests;
