//! One simulated device: its points, its register bank and its faults behind one cheap
//! lock, turned into registers by the profile's own codec.

use std::sync::{Mutex, MutexGuard};

use firmware_config::codec::{decode, encode};
use firmware_config::{DataType, Device, Point, RawValue};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::bank::{Bank, Written};
use crate::command::Action;
use crate::fault::{Active, DeviceFault, PointFault};
use crate::frame::pdu::{parse_request, push_exception};
use crate::signal::{Drive, Signal};

/// What a transport should do with the reply a device prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Send it.
    Send,
    /// Send nothing: the device is silent, or the request was a broadcast.
    Silent,
    /// Send it after this much real time.
    Late(std::time::Duration),
    /// Send it damaged.
    Corrupt,
}

/// A point's simulation state.
#[derive(Debug, Clone)]
struct PointState {
    signal: Signal,
    fault: Option<Active<PointFault>>,
    /// A client wrote the point: keep what it wrote, as a device keeps a set point.
    written: bool,
}

/// Everything that changes, under one lock.
#[derive(Debug)]
pub struct DeviceState {
    pub bank: Bank,
    fault: Option<Active<DeviceFault>>,
    points: Vec<PointState>,
    rng: SmallRng,
    /// Scratch for one refresh, kept to avoid allocating on every tick.
    values: Vec<Option<f64>>,
}

/// A point as served right now.
#[derive(Debug, Clone, PartialEq)]
pub struct PointReading {
    /// Engineering value, as a gateway would decode it (`None` for strings).
    pub value: Option<f64>,
    pub text: Option<String>,
    /// The registers (or the one bit, as 0/1) on the wire.
    pub registers: Vec<u16>,
}

#[derive(Debug)]
pub struct DeviceSim {
    pub id: String,
    pub unit: u8,
    pub bus: usize,
    pub points: std::sync::Arc<[Point]>,
    /// Points in the order they are encoded: helpers (decimals, units, status) first, so a
    /// value is always encoded with the decimals currently served.
    order: Vec<usize>,
    state: Mutex<DeviceState>,
}

impl DeviceSim {
    pub fn new(device: &Device, seed: u64) -> Self {
        let points = device.points.clone();
        let mut helper = vec![false; points.len()];
        for p in points.iter() {
            for r in [&p.decimals_from, &p.unit_from, &p.status_from]
                .into_iter()
                .flatten()
            {
                helper[r.index] = true;
            }
        }
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by_key(|&i| !helper[i]);
        let states = points
            .iter()
            .enumerate()
            .map(|(i, p)| PointState {
                signal: Signal::new(p.simulate, helper[i] || p.status_codes.is_some()),
                fault: None,
                written: false,
            })
            .collect();
        let state = DeviceState {
            bank: Bank::for_points(&points),
            fault: None,
            points: states,
            rng: SmallRng::seed_from_u64(seed),
            values: vec![None; points.len()],
        };
        DeviceSim {
            id: device.id.clone(),
            unit: device.unit,
            bus: device.bus,
            points,
            order,
            state: Mutex::new(state),
        }
    }

    /// The lock; a panic elsewhere must not take the simulated plant down with it.
    pub fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers one request PDU into `out` (appended). `now` is simulated seconds.
    pub fn handle(&self, pdu: &[u8], out: &mut Vec<u8>, now: f64) -> Reply {
        let mut st = self.lock();
        let fault = st.fault.and_then(|f| f.at(now));
        let reply = match fault {
            Some(DeviceFault::Silent) => return Reply::Silent,
            Some(DeviceFault::Exception(code)) => {
                push_exception(out, pdu.first().copied().unwrap_or(0), code);
                return Reply::Send;
            }
            Some(DeviceFault::Slow(delay)) => Reply::Late(delay),
            Some(DeviceFault::Corrupt) => Reply::Corrupt,
            None => Reply::Send,
        };
        match parse_request(pdu) {
            Err(e) => push_exception(out, e.function, e.code),
            Ok(req) => match st.bank.execute(&req, out) {
                Ok(Some(w)) => self.mark_written(&mut st, w),
                Ok(None) => {}
                Err(code) => push_exception(out, pdu[0], code),
            },
        }
        reply
    }

    /// Executes a broadcast write (unit 0): the device acts and never answers.
    pub fn broadcast(&self, pdu: &[u8], now: f64) {
        let mut st = self.lock();
        if matches!(st.fault.and_then(|f| f.at(now)), Some(DeviceFault::Silent)) {
            return;
        }
        if let Ok(req) = parse_request(pdu) {
            if req.is_write() {
                let mut sink = Vec::new();
                if let Ok(Some(w)) = st.bank.execute(&req, &mut sink) {
                    self.mark_written(&mut st, w);
                }
            }
        }
    }

    fn mark_written(&self, st: &mut DeviceState, w: Written) {
        for (p, s) in self.points.iter().zip(st.points.iter_mut()) {
            if p.kind == w.table && (p.address as u32) < w.end && p.end() > w.start {
                s.written = true;
            }
        }
    }

    /// Applies an action at simulated time `at` and refreshes the registers at `now`, so
    /// a control client reads the effect at once. Returns the reading for `Action::Read`.
    pub fn apply(
        &self,
        point: Option<usize>,
        action: &Action,
        at: f64,
        now: f64,
    ) -> Option<PointReading> {
        let mut st = self.lock();
        if let (Action::Read, Some(i)) = (action, point) {
            return Some(self.read(&st, i));
        }
        let from = point.and_then(|i| self.read(&st, i).value).unwrap_or(0.0);
        let drive = |st: &mut DeviceState, d: Drive| {
            if let Some(i) = point {
                st.points[i].signal.drive = d;
                st.points[i].written = false;
            }
        };
        match *action {
            Action::Set(v) => drive(&mut st, Drive::Hold(v)),
            Action::Ramp { to, over } => drive(
                &mut st,
                Drive::Ramp {
                    from,
                    to,
                    start: at,
                    over,
                },
            ),
            Action::Normal(v) => drive(&mut st, Drive::Baseline(v)),
            Action::Release => drive(&mut st, Drive::Profile),
            Action::DeviceFault { fault, duration } => {
                st.fault = Some(Active::new(fault, at, duration))
            }
            Action::PointFault { fault, duration } => {
                if let Some(i) = point {
                    st.points[i].fault = Some(Active::new(fault, at, duration));
                }
            }
            Action::ClearFault => match point {
                Some(i) => st.points[i].fault = None,
                None => {
                    st.fault = None;
                    st.points.iter_mut().for_each(|p| p.fault = None);
                }
            },
            Action::Read => {}
        }
        self.refresh_locked(&mut st, now);
        None
    }

    /// Recomputes every simulated point's registers at simulated time `now`.
    pub fn refresh(&self, now: f64) {
        let mut st = self.lock();
        self.refresh_locked(&mut st, now);
    }

    fn refresh_locked(&self, st: &mut DeviceState, now: f64) {
        let DeviceState {
            bank,
            fault,
            points,
            rng,
            values,
        } = st;
        if fault.is_some_and(|f| f.at(now).is_none()) {
            *fault = None;
        }
        for (i, s) in points.iter_mut().enumerate() {
            if s.fault.is_some_and(|f| f.at(now).is_none()) {
                s.fault = None;
            }
            values[i] = (!s.written).then(|| s.signal.value(now, rng));
        }
        for (i, s) in points.iter().enumerate() {
            match s.fault.map(|f| f.fault) {
                Some(PointFault::Current(ma)) => {
                    if let Some(span) = self.points[i].loop_span {
                        values[i] = Some(span.value_at(ma));
                    }
                }
                Some(PointFault::Value(v)) => values[i] = Some(v),
                Some(PointFault::Status { register, code }) => values[register] = Some(code as f64),
                None => {}
            }
        }
        for &i in &self.order {
            if let Some(v) = values[i] {
                let decimals = self.points[i]
                    .decimals_from
                    .as_ref()
                    .map(|r| decimals_in(bank, &self.points[r.index]));
                encode_point(bank, &self.points[i], v, decimals);
            }
        }
        self.follow(st);
    }

    /// Points that follow another (a limit switch its valve's output) take its value as
    /// served now, unless a scenario, an operator or a fault drives them.
    fn follow(&self, st: &mut DeviceState) {
        for (i, p) in self.points.iter().enumerate() {
            let Some(j) = p.simulate.follows else {
                continue;
            };
            let s = &st.points[i];
            if s.written || s.fault.is_some() || s.signal.drive != Drive::Profile {
                continue;
            }
            if let Some(v) = self.read(st, j).value {
                encode_point(&mut st.bank, p, v, None);
            }
        }
    }

    /// Decodes a point from the registers served right now.
    fn read(&self, st: &DeviceState, i: usize) -> PointReading {
        let p = &self.points[i];
        let a = p.address as usize;
        if p.kind.is_bit() {
            let on = st.bank.bits(p.kind).get(a).copied().unwrap_or(false);
            return PointReading {
                value: Some(f64::from(u8::from(on))),
                text: None,
                registers: vec![u16::from(on)],
            };
        }
        let words = st
            .bank
            .registers(p.kind)
            .get(a..p.end() as usize)
            .unwrap_or(&[])
            .to_vec();
        let decimals = p
            .decimals_from
            .as_ref()
            .map(|r| decimals_in(&st.bank, &self.points[r.index]));
        match decode(p.ty, p.order, &words) {
            Ok(RawValue::Text(t)) => PointReading {
                value: None,
                text: Some(t),
                registers: words,
            },
            Ok(raw) => PointReading {
                value: raw.as_f64().map(|r| p.to_engineering(r, decimals)),
                text: None,
                registers: words,
            },
            Err(_) => PointReading {
                value: None,
                text: None,
                registers: words,
            },
        }
    }
}

/// The decimal places a decimals register holds now, limited to the 0..=4 vendors use.
fn decimals_in(bank: &Bank, helper: &Point) -> u8 {
    let word = bank
        .registers(helper.kind)
        .get(helper.address as usize)
        .copied()
        .unwrap_or(0);
    let n = match helper.ty {
        DataType::I16 => (word as i16).max(0) as u16,
        _ => word,
    };
    n.min(4) as u8
}

/// The raw number as the register type holds it: integers rounded and clamped to the
/// type's range (a detector shows 0, not garbage, for a slightly negative reading).
fn raw_value(ty: DataType, raw: f64) -> RawValue {
    let raw = if raw.is_finite() { raw } else { 0.0 };
    let r = raw.round();
    match ty {
        DataType::U16 => RawValue::Unsigned(r.clamp(0.0, u16::MAX as f64) as u64),
        DataType::I16 => RawValue::Signed(r.clamp(i16::MIN as f64, i16::MAX as f64) as i64),
        DataType::U32 => RawValue::Unsigned(r.clamp(0.0, u32::MAX as f64) as u64),
        DataType::I32 => RawValue::Signed(r.clamp(i32::MIN as f64, i32::MAX as f64) as i64),
        // `as` saturates at the type's limits.
        DataType::U64 => RawValue::Unsigned(r as u64),
        DataType::I64 => RawValue::Signed(r as i64),
        DataType::F32 | DataType::F64 => RawValue::Float(raw),
        DataType::Bit(_) => RawValue::Bool(raw != 0.0),
        DataType::Text(_) => RawValue::Text(String::new()),
    }
}

/// Writes one point's engineering value into the bank.
fn encode_point(bank: &mut Bank, p: &Point, value: f64, decimals: Option<u8>) {
    let a = p.address as usize;
    if p.kind.is_bit() {
        if let Some(bit) = bank.bits_mut(p.kind).get_mut(a) {
            *bit = value != 0.0 && !value.is_nan();
        }
        return;
    }
    let raw = match p.ty {
        DataType::Text(_) => return, // strings are left empty
        DataType::Bit(_) => RawValue::Bool(value != 0.0 && !value.is_nan()),
        ty => raw_value(ty, p.to_raw(value, decimals)),
    };
    let regs = bank.registers_mut(p.kind);
    let Some(slot) = regs.get_mut(a..p.end() as usize) else {
        return;
    };
    if let Ok(words) = encode(p.ty, p.order, &raw, slot[0]) {
        slot.copy_from_slice(&words);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_clamp() {
        assert_eq!(raw_value(DataType::U16, -3.2), RawValue::Unsigned(0));
        assert_eq!(raw_value(DataType::U16, 70000.0), RawValue::Unsigned(65535));
        assert_eq!(raw_value(DataType::I16, -40000.0), RawValue::Signed(-32768));
        assert_eq!(raw_value(DataType::U16, 299.6), RawValue::Unsigned(300));
        assert_eq!(raw_value(DataType::I32, f64::NAN), RawValue::Signed(0));
    }

    fn device() -> DeviceSim {
        DeviceSim::new(&crate::test_site().devices[0], 1)
    }

    fn read(d: &DeviceSim, pdu: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(d.handle(pdu, &mut out, 0.0), Reply::Send);
        out
    }

    #[test]
    fn values_follow_commands_and_faults() {
        let d = device();
        let ch1 = d.points.iter().position(|p| p.id == "CH1").unwrap();
        d.apply(Some(ch1), &Action::Set(30.0), 0.0, 0.0);
        // CH1 = 300 (1 decimal), status 0, range 0, unit code 4 (%LEL), decimals 1
        assert_eq!(
            read(&d, &[3, 0, 0, 0, 5]),
            [3, 10, 1, 44, 0, 0, 0, 0, 0, 4, 0, 1]
        );
        let r = d.apply(Some(ch1), &Action::Read, 0.0, 0.0).unwrap();
        assert_eq!((r.value, r.registers), (Some(30.0), vec![300]));
        let bad = PointFault::Status {
            register: ch1 + 1,
            code: 3,
        };
        d.apply(
            Some(ch1),
            &Action::PointFault {
                fault: bad,
                duration: Some(5.0),
            },
            0.0,
            0.0,
        );
        assert_eq!(read(&d, &[3, 0, 1, 0, 1]), [3, 2, 0, 3]);
        d.refresh(5.0);
        assert_eq!(read(&d, &[3, 0, 1, 0, 1]), [3, 2, 0, 0]);
        // past the last point of the table: illegal address; a gap register reads 0
        assert_eq!(read(&d, &[3, 0, 0, 0, 54]), [0x83, 2]);
        assert_eq!(read(&d, &[3, 0, 2, 0, 1]), [3, 2, 0, 0]);
    }

    #[test]
    fn registers_written_by_clients_stay() {
        let d = device();
        assert_eq!(read(&d, &[6, 0, 0, 0, 77]), [6, 0, 0, 0, 77]);
        d.refresh(1.0);
        assert_eq!(read(&d, &[3, 0, 0, 0, 1]), [3, 2, 0, 77]);
        // writing the decimals register changes how the value reads
        read(&d, &[6, 0, 4, 0, 2]);
        let ch1 = d.points.iter().position(|p| p.id == "CH1").unwrap();
        assert_eq!(
            d.apply(Some(ch1), &Action::Read, 0.0, 0.0).unwrap().value,
            Some(0.77)
        );
    }

    #[test]
    fn device_faults() {
        let d = device();
        let mut out = Vec::new();
        d.apply(
            None,
            &Action::DeviceFault {
                fault: DeviceFault::Silent,
                duration: None,
            },
            0.0,
            0.0,
        );
        assert_eq!(d.handle(&[3, 0, 0, 0, 1], &mut out, 100.0), Reply::Silent);
        d.apply(
            None,
            &Action::DeviceFault {
                fault: DeviceFault::Exception(6),
                duration: None,
            },
            0.0,
            0.0,
        );
        assert_eq!(read(&d, &[3, 0, 0, 0, 1]), [0x83, 6]);
        d.apply(None, &Action::ClearFault, 0.0, 0.0);
        assert_eq!(read(&d, &[3, 0, 0, 0, 1]).len(), 4);
    }
}
