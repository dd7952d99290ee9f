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

use firmware_config::alarm::{AlarmSpec, Direction, Level, Limit};
use hazgate_wire::{Quality, Reason};
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
    /// The limit of the new level, or of the cleared one (for a rate, the change).
    pub limit: Option<f64>,
    /// The label of that limit.
    pub label: Option<String>,
    /// Acquisition time of the reading that caused it, ms UTC.
    pub ts: i64,
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
    pub limit: Option<f64>,
    pub label: Option<String>,
}

/// A raised condition: its level and what the event that set it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Raised {
    level: Level,
    since: i64,
    value: Option<f64>,
    limit: Option<f64>,
    label: Option<String>,
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
    active: Option<Raised>,
}

impl LimitState {
    fn new() -> Self {
        LimitState {
            inforce: 0,
            raw: 0,
            up: [NEVER; 4],
            down: [EVER; 4],
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
    ts: i64,
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
    let label = says.label.cloned();
    out.push(Transition {
        condition,
        kind,
        previous,
        level: Some(level),
        value: says.value,
        limit: says.limit,
        label: label.clone(),
        ts,
    });
    *slot = Some(Raised {
        level,
        since: ts,
        value: says.value,
        limit: says.limit,
        label,
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
            limit: r.limit,
            label: r.label,
            ts,
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
        flag.since = at.ts;
    }
    let held = at.ts.saturating_sub(flag.since);
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
            self.reconcile(ts, v, &mut out);
        }
        let failed = bad && reason.is_some_and(is_comm_failure);
        let at = At {
            ts,
            on: self.on,
            off: self.off,
        };

        if let Some((_, level)) = self.spec.comm_loss {
            let c = &mut self.st.comm;
            if v.is_some() {
                c.clock = ts;
                clear(&mut c.active, Condition::CommLoss, v, ts, &mut out);
            } else {
                if c.clock == NEVER {
                    c.clock = ts;
                }
                if failed && c.active.is_none() && ts.saturating_sub(c.clock) >= self.comm_after {
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
        let ts = at.ts;
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
                let since = &mut st.up[usize::from(k - 1)];
                if raw < k {
                    *since = NEVER;
                } else if *since == NEVER {
                    *since = ts;
                }
            }
            for k in 0..4u8 {
                let since = &mut st.down[usize::from(k)];
                if raw > k {
                    *since = NEVER;
                } else if *since == NEVER {
                    *since = ts;
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
                .find(|&k| ts.saturating_sub(st.up[usize::from(k - 1)]) >= at.on)
        } else {
            (raw..now).find(|&k| ts.saturating_sub(st.down[usize::from(k)]) >= at.off)
        };
        match target {
            None => {}
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
                    limit: r.limit,
                    label: r.label.clone(),
                })
            })
            .collect()
    }

    fn raised(&self) -> impl Iterator<Item = (Condition, Option<&Raised>)> {
        let st = &self.st;
        [
            (Condition::CommLoss, st.comm.active.as_ref()),
            (Condition::SensorFault, st.fault.active.as_ref()),
            (Condition::OutOfRange, st.range.active.as_ref()),
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
    let n = at.ts.div_euclid(rs.width);
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
    let (rise, fall) = (x - lo, hi - x);
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
mod tests {
    use super::*;
    use firmware_config::alarm::RateLimit;

    const S: i64 = 1000;

    fn lim(direction: Direction, value: f64, level: Level, label: &str) -> Limit {
        Limit {
            direction,
            value,
            level,
            label: (!label.is_empty()).then(|| label.to_string()),
        }
    }

    fn spec(mut limits: Vec<Limit>) -> AlarmSpec {
        limits.sort_by_key(|l| l.level);
        AlarmSpec {
            limits,
            deadband: 0.0,
            on_delay: Duration::ZERO,
            off_delay: Duration::ZERO,
            rate: None,
            comm_loss: None,
            sensor_fault: None,
            out_of_range: None,
            linkage: Vec::new(),
        }
    }

    fn leak() -> AlarmSpec {
        AlarmSpec {
            deadband: 2.0,
            on_delay: Duration::from_secs(2),
            off_delay: Duration::from_secs(5),
            ..spec(vec![
                lim(Direction::Above, 25.0, Level::Yellow, "一级报警"),
                lim(Direction::Above, 50.0, Level::Red, "二级报警"),
            ])
        }
    }

    fn good(p: &mut PointAlarm, ts: i64, v: f64) -> Vec<Transition> {
        p.evaluate(ts, Some(v), &Quality::Good)
    }

    fn timeout() -> Quality {
        Quality::bad(Reason::Timeout, "no reply")
    }

    /// (kind, previous, level, value, limit, ts)
    type Ev = (
        EventKind,
        Option<Level>,
        Option<Level>,
        Option<f64>,
        Option<f64>,
        i64,
    );

    fn ev(t: &Transition) -> Ev {
        (t.kind, t.previous, t.level, t.value, t.limit, t.ts)
    }

    use EventKind::*;
    use Level::*;

    #[test]
    fn leak_ramp_up_and_down() {
        let mut p = PointAlarm::new(leak());
        let mut all = Vec::new();
        // Up 1 %LEL a second to 60, hold, then down 1 a second to 0.
        for t in 0..=60 {
            all.extend(good(&mut p, t * S, t as f64));
        }
        for t in 61..70 {
            all.extend(good(&mut p, t * S, 60.0));
        }
        for j in 0..=60 {
            all.extend(good(&mut p, (70 + j) * S, 60.0 - j as f64));
        }
        let got: Vec<Ev> = all.iter().map(ev).collect();
        assert_eq!(
            got,
            vec![
                // 25 crossed at 25 s, held 2 s.
                (Raise, None, Some(Yellow), Some(27.0), Some(25.0), 27 * S),
                (
                    Escalate,
                    Some(Yellow),
                    Some(Red),
                    Some(52.0),
                    Some(50.0),
                    52 * S
                ),
                // Below 50 - 2 at 83 s (47), held 5 s.
                (
                    Deescalate,
                    Some(Red),
                    Some(Yellow),
                    Some(42.0),
                    Some(25.0),
                    88 * S
                ),
                // Below 25 - 2 at 108 s (22), held 5 s.
                (Clear, Some(Yellow), None, Some(17.0), Some(25.0), 113 * S),
            ]
        );
        assert_eq!(all[0].label.as_deref(), Some("一级报警"));
        assert_eq!(all[1].label.as_deref(), Some("二级报警"));
        assert_eq!(all[3].label.as_deref(), Some("一级报警"));
        assert_eq!(p.level(), None);
    }

    #[test]
    fn a_jump_goes_straight_to_its_level_and_back() {
        let mut p = PointAlarm::new(leak());
        assert!(good(&mut p, 0, 0.0).is_empty());
        assert!(good(&mut p, S, 70.0).is_empty());
        let e = good(&mut p, 3 * S, 70.0);
        assert_eq!(
            ev(&e[0]),
            (Raise, None, Some(Red), Some(70.0), Some(50.0), 3 * S)
        );
        assert!(good(&mut p, 4 * S, 0.0).is_empty());
        let e = good(&mut p, 9 * S, 0.0);
        assert_eq!(
            ev(&e[0]),
            (Clear, Some(Red), None, Some(0.0), Some(50.0), 9 * S)
        );
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn a_short_spike_under_the_on_delay_is_nothing() {
        let mut p = PointAlarm::new(leak());
        assert!(good(&mut p, 0, 30.0).is_empty());
        assert!(good(&mut p, 1500, 10.0).is_empty());
        assert!(good(&mut p, 2500, 10.0).is_empty());
        assert_eq!(p.level(), None);
    }

    #[test]
    fn noise_within_the_deadband_raises_once_and_clears_once() {
        let mut p = PointAlarm::new(AlarmSpec {
            deadband: 2.0,
            ..spec(vec![lim(Direction::Above, 25.0, Yellow, "")])
        });
        let noise = [
            24.0, 25.5, 24.0, 25.9, 23.1, 26.0, 23.5, 24.9, 25.0, 23.0, 24.5,
        ];
        let mut all = Vec::new();
        for (i, v) in noise.iter().enumerate() {
            all.extend(good(&mut p, i as i64 * S, *v));
        }
        all.extend(good(&mut p, 20 * S, 22.9));
        let got: Vec<Ev> = all.iter().map(ev).collect();
        assert_eq!(
            got,
            vec![
                (Raise, None, Some(Yellow), Some(25.5), Some(25.0), S),
                (Clear, Some(Yellow), None, Some(22.9), Some(25.0), 20 * S),
            ]
        );
    }

    #[test]
    fn dry_beach_below_limits_and_both_directions() {
        // Dry beach length: below 100 m orange, below 80 m red; and a pond-side limit above.
        let mut p = PointAlarm::new(AlarmSpec {
            deadband: 2.0,
            ..spec(vec![
                lim(Direction::Below, 100.0, Orange, ""),
                lim(Direction::Below, 80.0, Red, ""),
                lim(Direction::Above, 400.0, Yellow, ""),
            ])
        });
        let steps = [
            150.0, 95.0, 75.0, 81.0, 83.0, 101.0, 103.0, 450.0, 399.0, 397.0,
        ];
        let got: Vec<Ev> = steps
            .iter()
            .enumerate()
            .flat_map(|(i, v)| good(&mut p, i as i64 * S, *v))
            .map(|t| ev(&t))
            .collect();
        assert_eq!(
            got,
            vec![
                (Raise, None, Some(Orange), Some(95.0), Some(100.0), S),
                (
                    Escalate,
                    Some(Orange),
                    Some(Red),
                    Some(75.0),
                    Some(80.0),
                    2 * S
                ),
                // 81 is within the deadband of 80; 83 is past it.
                (
                    Deescalate,
                    Some(Red),
                    Some(Orange),
                    Some(83.0),
                    Some(100.0),
                    4 * S
                ),
                (Clear, Some(Orange), None, Some(103.0), Some(100.0), 6 * S),
                (Raise, None, Some(Yellow), Some(450.0), Some(400.0), 7 * S),
                (Clear, Some(Yellow), None, Some(397.0), Some(400.0), 9 * S),
            ]
        );
    }

    #[test]
    fn comm_loss_after_ten_seconds_of_timeouts() {
        let mut p = PointAlarm::new(AlarmSpec {
            comm_loss: Some((Duration::from_secs(10), Orange)),
            ..leak()
        });
        assert!(good(&mut p, 0, 30.0).is_empty());
        let mut all = Vec::new();
        for t in 1..=12 {
            all.extend(p.evaluate(t * S, None, &timeout()));
        }
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].condition, Condition::CommLoss);
        assert_eq!(ev(&all[0]), (Raise, None, Some(Orange), None, None, 10 * S));
        // The limit stays where it was: pending yellow is not lost, nothing cleared.
        assert_eq!(p.condition(Condition::Limit), None);
        let e = good(&mut p, 13 * S, 30.0);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].condition, Condition::CommLoss);
        assert_eq!(
            ev(&e[0]),
            (Clear, Some(Orange), None, Some(30.0), None, 13 * S)
        );
        // 30 has been above 25 since 0 s: the yellow is due.
        assert_eq!((e[1].condition, e[1].kind), (Condition::Limit, Raise));
        assert_eq!(p.level(), Some(Yellow));
    }

    #[test]
    fn comm_loss_with_no_reading_ever() {
        let mut p = PointAlarm::new(AlarmSpec {
            comm_loss: Some((Duration::from_secs(10), Red)),
            ..spec(vec![])
        });
        let refused = Quality::bad(Reason::ConnectionRefused, "refused");
        assert!(p.evaluate(100 * S, None, &refused).is_empty());
        assert!(p.evaluate(109 * S, None, &refused).is_empty());
        let e = p.evaluate(110 * S, None, &refused);
        assert_eq!(ev(&e[0]), (Raise, None, Some(Red), None, None, 110 * S));
        assert!(p.evaluate(111 * S, None, &refused).is_empty());
        assert_eq!(p.level(), Some(Red));
    }

    #[test]
    fn sensor_fault_with_delays_and_untouched_by_failed_polls() {
        let mut p = PointAlarm::new(AlarmSpec {
            sensor_fault: Some(Yellow),
            on_delay: Duration::from_secs(2),
            off_delay: Duration::from_secs(3),
            ..spec(vec![lim(Direction::Above, 25.0, Red, "")])
        });
        let fault = Quality::bad(Reason::SensorFault, "loop current 2.1 mA");
        let mut all = Vec::new();
        for t in 0..5 {
            all.extend(p.evaluate(t * S, None, &fault));
        }
        // Failed polls say nothing about the sensor.
        for t in 5..20 {
            all.extend(p.evaluate(t * S, None, &timeout()));
        }
        for t in 20..30 {
            all.extend(good(&mut p, t * S, 5.0));
        }
        let got: Vec<(Condition, Ev)> = all.iter().map(|t| (t.condition, ev(t))).collect();
        assert_eq!(
            got,
            vec![
                (
                    Condition::SensorFault,
                    (Raise, None, Some(Yellow), None, None, 2 * S)
                ),
                (
                    Condition::SensorFault,
                    (Clear, Some(Yellow), None, Some(5.0), None, 23 * S)
                ),
            ]
        );
    }

    #[test]
    fn out_of_range_alongside_the_limits() {
        let mut p = PointAlarm::new(AlarmSpec {
            out_of_range: Some(Blue),
            ..spec(vec![lim(Direction::Above, 50.0, Red, "")])
        });
        let oor = Quality::uncertain(Reason::OutOfRange, "20.8 mA");
        let e = p.evaluate(0, Some(101.0), &oor);
        let got: Vec<(Condition, EventKind, Option<Level>)> =
            e.iter().map(|t| (t.condition, t.kind, t.level)).collect();
        assert_eq!(
            got,
            vec![
                (Condition::OutOfRange, Raise, Some(Blue)),
                (Condition::Limit, Raise, Some(Red)),
            ]
        );
        assert!(p.evaluate(S, Some(101.0), &oor).is_empty());
        let e = good(&mut p, 2 * S, 10.0);
        let got: Vec<(Condition, EventKind)> = e.iter().map(|t| (t.condition, t.kind)).collect();
        assert_eq!(
            got,
            vec![(Condition::OutOfRange, Clear), (Condition::Limit, Clear)]
        );
    }

    fn pond() -> AlarmSpec {
        AlarmSpec {
            deadband: 0.05,
            rate: Some(RateLimit {
                change: 0.5,
                window: Duration::from_secs(600),
                level: Orange,
                label: Some("rising fast".into()),
            }),
            ..spec(vec![lim(Direction::Above, 1000.0, Red, "")])
        }
    }

    #[test]
    fn pond_rising_half_a_metre_within_ten_minutes() {
        let min = 60 * S;
        // Slow: 3.125 cm a minute for an hour, 0.31 m per 10 min: nothing.
        let mut p = PointAlarm::new(pond());
        for m in 0..=60 {
            assert!(good(&mut p, m * min, 100.0 + 0.03125 * m as f64).is_empty());
        }
        // Fast: 12.5 cm a minute from minute 10 to 19; 0.5 m above minute 9 at minute 13.
        let mut p = PointAlarm::new(pond());
        let mut all = Vec::new();
        let mut level = 100.0;
        for m in 0..=40 {
            if (10..20).contains(&m) {
                level += 0.125;
            }
            all.extend(good(&mut p, m * min, level));
        }
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!((all[0].kind, all[0].ts), (Raise, 13 * min));
        assert_eq!(all[0].condition, Condition::Rate);
        assert_eq!(all[0].value, Some(0.5));
        assert_eq!(all[0].limit, Some(0.5));
        assert_eq!(all[0].label.as_deref(), Some("rising fast"));
        // Level from minute 19 (101.25); the change drops below 0.45 once the window no
        // longer reaches minute 15 (100.75): at minute 26.
        assert_eq!((all[1].kind, all[1].ts), (Clear, 26 * min));
        assert_eq!(all[1].value, Some(0.375));
        // A fall counts too.
        let mut p = PointAlarm::new(pond());
        good(&mut p, 0, 100.0);
        let e = good(&mut p, min, 99.4);
        assert_eq!(
            (e[0].kind, e[0].value.map(|v| (v * 10.0).round())),
            (Raise, Some(-6.0))
        );
    }

    #[test]
    fn restore_mid_alarm_neither_raises_again_nor_clears() {
        let s = AlarmSpec {
            comm_loss: Some((Duration::from_secs(10), Orange)),
            sensor_fault: Some(Yellow),
            ..leak()
        };
        let mut p = PointAlarm::new(s.clone());
        for t in 0..=60 {
            good(&mut p, t * S, t as f64);
        }
        assert_eq!(p.level(), Some(Red));
        // Falling: the red's deadband is passed at 47, the de-escalation pending.
        for (i, v) in [49.0, 47.0, 46.0].iter().enumerate() {
            assert!(good(&mut p, (61 + i as i64) * S, *v).is_empty());
        }
        let json = serde_json::to_string(&p.snapshot()).unwrap();
        let mut q = PointAlarm::restore(s.clone(), serde_json::from_str(&json).unwrap());
        assert_eq!(q.active(), p.active());
        assert_eq!(q.level(), Some(Red));
        // Pending since 62 s: due at 67 s, exactly once, as without the restart.
        assert!(good(&mut q, 66 * S, 45.0).is_empty());
        let e = good(&mut q, 67 * S, 45.0);
        assert_eq!(
            ev(&e[0]),
            (
                Deescalate,
                Some(Red),
                Some(Yellow),
                Some(45.0),
                Some(25.0),
                67 * S
            )
        );

        // Within the deadband of a raised limit after a restart: still raised, no events.
        let mut p = PointAlarm::new(s.clone());
        good(&mut p, 0, 60.0);
        good(&mut p, 2 * S, 60.0);
        for t in 3..20 {
            p.evaluate(t * S, None, &timeout());
        }
        assert_eq!(p.level(), Some(Red));
        let state = p.snapshot();
        let mut q = PointAlarm::restore(s.clone(), state);
        assert!(q.evaluate(20 * S, None, &timeout()).is_empty());
        let e = good(&mut q, 21 * S, 49.0);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].condition, e[0].kind), (Condition::CommLoss, Clear));
        assert_eq!(q.condition(Condition::Limit), Some(Red));
        assert!(good(&mut q, 22 * S, 60.0).is_empty());
    }

    #[test]
    fn restore_under_changed_settings() {
        let s = AlarmSpec {
            sensor_fault: Some(Yellow),
            ..leak()
        };
        let mut p = PointAlarm::new(s.clone());
        let fault = Quality::bad(Reason::SensorFault, "fault");
        p.evaluate(0, None, &fault);
        p.evaluate(2 * S, None, &fault);
        good(&mut p, 3 * S, 60.0);
        good(&mut p, 5 * S, 60.0);
        assert_eq!(p.condition(Condition::Limit), Some(Red));
        assert_eq!(p.condition(Condition::SensorFault), Some(Yellow));
        // Sensor fault no longer configured; the red limit moved from 50 to 55.
        let changed = AlarmSpec {
            sensor_fault: None,
            ..spec(vec![
                lim(Direction::Above, 25.0, Yellow, ""),
                lim(Direction::Above, 55.0, Red, ""),
            ])
        };
        let changed = AlarmSpec {
            deadband: 2.0,
            ..changed
        };
        let mut q = PointAlarm::restore(changed, p.snapshot());
        let e = good(&mut q, 6 * S, 54.0);
        // The fault clears; 54 is within the deadband of the new red: red stays.
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].condition, e[0].kind), (Condition::SensorFault, Clear));
        assert_eq!(q.condition(Condition::Limit), Some(Red));
        let e = good(&mut q, 7 * S, 52.0);
        assert_eq!(
            ev(&e[0]),
            (
                Deescalate,
                Some(Red),
                Some(Yellow),
                Some(52.0),
                Some(25.0),
                7 * S
            )
        );

        // Restored under another ladder with the value already normal: it clears after
        // the off-delay, like any other fall.
        let mut p = PointAlarm::new(leak());
        good(&mut p, 0, 30.0);
        good(&mut p, 2 * S, 30.0);
        good(&mut p, 3 * S, 0.0);
        let other = AlarmSpec {
            deadband: 1.0,
            ..leak()
        };
        let mut q = PointAlarm::restore(other, p.snapshot());
        assert!(good(&mut q, 10 * S, 0.0).is_empty());
        assert!(good(&mut q, 14 * S, 0.0).is_empty());
        let e = good(&mut q, 15 * S, 0.0);
        assert_eq!(
            ev(&e[0]),
            (Clear, Some(Yellow), None, Some(0.0), Some(25.0), 15 * S)
        );
    }

    #[test]
    fn no_allocation_when_nothing_changes() {
        let mut p = PointAlarm::new(AlarmSpec {
            comm_loss: Some((Duration::from_secs(10), Orange)),
            sensor_fault: Some(Yellow),
            ..pond()
        });
        for t in 0..100 {
            let e = good(&mut p, t * S, 10.0 + (t % 3) as f64 * 0.01);
            assert_eq!(e.capacity(), 0);
        }
    }

    #[test]
    fn serde_names() {
        let t = Transition {
            condition: Condition::CommLoss,
            kind: Deescalate,
            previous: Some(Red),
            level: Some(Yellow),
            value: None,
            limit: None,
            label: None,
            ts: 1,
        };
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j["condition"], "comm_loss");
        assert_eq!(j["kind"], "deescalate");
        assert_eq!(j["previous"], "red");
    }
}
