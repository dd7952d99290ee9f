//! Turns what a cycle read into one `Reading` per published point.

use std::collections::BTreeMap;
use std::sync::Arc;

use firmware_config::codec::{decode, RawValue};
use firmware_config::profile::{CodeQuality, PointRef};
use firmware_config::{DataType, Device};
use hazgate_wire::{Quality, Reading, Reason, Value};

use super::quality::{judge_loop_current, LoopState};
use crate::poll::cycle::DeviceImage;
use crate::poll::modbus::Response;
use crate::poll::plan::DevicePlan;

/// Decodes one device's cycles. Built once per device, so the per-cycle work is only the
/// decoding itself: ids are shared, never copied, and the point-to-request map is kept.
pub struct DeviceDecoder {
    device: Device,
    plan: DevicePlan,
    block_of: Vec<usize>,
    device_id: Arc<str>,
    point_ids: Vec<Arc<str>>,
    units: Vec<Option<Arc<str>>>,
    unit_codes: BTreeMap<u16, Arc<str>>,
}

impl DeviceDecoder {
    pub fn new(device: &Device, plan: &DevicePlan) -> Self {
        let mut block_of = vec![usize::MAX; device.points.len()];
        for (b, block) in plan.blocks.iter().enumerate() {
            for &p in &block.points {
                block_of[p] = b;
            }
        }
        Self {
            device: device.clone(),
            plan: plan.clone(),
            block_of,
            device_id: device.id.as_str().into(),
            point_ids: device.points.iter().map(|p| p.id.as_str().into()).collect(),
            units: device
                .points
                .iter()
                .map(|p| p.unit.as_deref().map(Into::into))
                .collect(),
            unit_codes: device
                .profile
                .unit_codes
                .iter()
                .map(|(c, u)| (*c, u.as_str().into()))
                .collect(),
        }
    }

    pub fn plan(&self) -> &DevicePlan {
        &self.plan
    }

    /// The readings of all published points from one cycle.
    pub fn decode(&self, image: &DeviceImage) -> Vec<Reading> {
        let mut out = Vec::with_capacity(self.point_ids.len());
        self.decode_into(image, &mut out);
        out
    }

    pub fn decode_into(&self, image: &DeviceImage, out: &mut Vec<Reading>) {
        let ctx = Decoder { d: self, image };
        out.extend(
            (0..self.device.points.len())
                .filter(|&i| self.device.points[i].publish)
                .map(|i| ctx.reading(i)),
        );
    }
}

/// The readings of all published points of a device from one cycle.
pub fn decode_device(device: &Device, plan: &DevicePlan, image: &DeviceImage) -> Vec<Reading> {
    DeviceDecoder::new(device, plan).decode(image)
}

struct Decoder<'a> {
    d: &'a DeviceDecoder,
    image: &'a DeviceImage,
}

/// A reading's fate once it cannot be good any more: no value, and the reason.
struct Failed(Quality);

impl Decoder<'_> {
    fn reading(&self, i: usize) -> Reading {
        let ts = self
            .image
            .results
            .get(self.d.block_of[i])
            .map(|r| r.ts)
            .unwrap_or(0);
        let (value, unit, quality) = match self.evaluate(i) {
            Ok((value, unit, quality)) => (Some(value), unit, quality),
            Err(Failed(q)) => (None, self.d.units[i].clone(), q),
        };
        Reading {
            device: self.d.device_id.clone(),
            point: self.d.point_ids[i].clone(),
            ts,
            value,
            unit,
            quality,
            flags: self.flags(i),
        }
    }

    fn evaluate(&self, i: usize) -> Result<(Value, Option<Arc<str>>, Quality), Failed> {
        let p = &self.d.device.points[i];
        let raw = self.raw(i)?;
        let mut quality = Quality::Good;
        let mut unit = self.d.units[i].clone();
        if let Some(r) = &p.unit_from {
            let code = self.helper(r)?;
            match u16::try_from(code)
                .ok()
                .and_then(|c| self.d.unit_codes.get(&c))
            {
                Some(name) => unit = Some(name.clone()),
                None => {
                    quality = quality.worst(Quality::uncertain(
                        Reason::UnknownUnit,
                        format!(
                            "unit code {code} is not in profile {}",
                            self.d.device.profile.model
                        ),
                    ))
                }
            }
        }
        if let Some(r) = &p.status_from {
            quality = quality.worst(self.status(r)?);
        }
        let value = match raw {
            RawValue::Bool(b) => Value::Bool(b),
            RawValue::Text(s) => Value::Text(s),
            number => {
                let decimals = match &p.decimals_from {
                    Some(r) => match self.helper(r)? {
                        n @ 0..=4 => Some(n as u8),
                        n => {
                            return Err(Failed(Quality::bad(
                                Reason::StatusCode,
                                format!("decimals register {} holds {n}, expected 0..=4", r.id),
                            )))
                        }
                    },
                    None => None,
                };
                let mut x = number.as_f64().unwrap_or(f64::NAN);
                if p.ty == DataType::F32 {
                    x = shortest_f32(x);
                }
                if !x.is_finite() {
                    return Err(Failed(Quality::bad(
                        Reason::SensorFault,
                        format!("the device reports {x}"),
                    )));
                }
                let signal = p.to_engineering_signal(x, decimals);
                if p.loop_span.is_some() {
                    match judge_loop_current(signal) {
                        LoopState::Fault => {
                            return Err(Failed(Quality::bad(
                                Reason::SensorFault,
                                format!("loop current {signal:.2} mA: transmitter fault (NE43)"),
                            )))
                        }
                        LoopState::OutOfRange => {
                            quality = quality.worst(Quality::uncertain(
                                Reason::OutOfRange,
                                format!(
                                    "loop current {signal:.2} mA is outside 3.8..20.5 mA (NE43)"
                                ),
                            ))
                        }
                        LoopState::Valid => {}
                    }
                }
                let v = tidy(p.to_engineering(x, decimals));
                if let Some(range) = p.range {
                    if !range.contains(v) {
                        quality = quality.worst(Quality::uncertain(
                            Reason::OutOfRange,
                            format!(
                                "{v} is outside the measuring range {}..{}",
                                range.low, range.high
                            ),
                        ));
                    }
                }
                Value::Number(v)
            }
        };
        Ok((value, unit, quality))
    }

    /// A point's raw value from its block, or the failure that kept it from being read.
    fn raw(&self, i: usize) -> Result<RawValue, Failed> {
        let p = &self.d.device.points[i];
        let b = self.d.block_of[i];
        let (Some(block), Some(result)) = (self.d.plan.blocks.get(b), self.image.results.get(b))
        else {
            return Err(Failed(Quality::bad(
                Reason::Framing,
                "point was not read this cycle",
            )));
        };
        let offset = (p.address - block.start) as usize;
        let width = p.width() as usize;
        match &result.data {
            Err(e) => Err(Failed(Quality::bad(e.reason(), e.to_string()))),
            Ok(Response::Bits(bits)) => {
                bits.get(offset).map(|b| RawValue::Bool(*b)).ok_or_else(|| {
                    Failed(Quality::bad(
                        Reason::Framing,
                        "reply shorter than requested",
                    ))
                })
            }
            Ok(Response::Words(words)) => {
                let slice = words.get(offset..offset + width).ok_or_else(|| {
                    Failed(Quality::bad(
                        Reason::Framing,
                        "reply shorter than requested",
                    ))
                })?;
                decode(p.ty, p.order, slice)
                    .map_err(|e| Failed(Quality::bad(Reason::Framing, e.to_string())))
            }
            Ok(Response::Written) => Err(Failed(Quality::bad(
                Reason::Framing,
                "write reply to a read",
            ))),
        }
    }

    /// The integer in a helper register (decimals, unit code, status).
    fn helper(&self, r: &PointRef) -> Result<i64, Failed> {
        match self.raw(r.index)? {
            RawValue::Unsigned(u) => Ok(u as i64),
            RawValue::Signed(s) => Ok(s),
            other => Err(Failed(Quality::bad(
                Reason::Framing,
                format!("helper register {} holds {other}", r.id),
            ))),
        }
    }

    /// Flags its status code gives the reading (calibration), if any.
    fn flags(&self, i: usize) -> Vec<hazgate_wire::Flag> {
        let Some(r) = &self.d.device.points[i].status_from else {
            return Vec::new();
        };
        let Ok(code) = self.helper(r) else {
            return Vec::new();
        };
        self.d.device.points[r.index]
            .status_codes
            .as_ref()
            .and_then(|name| self.d.device.profile.status_tables.get(name))
            .and_then(|t| u16::try_from(code).ok().and_then(|c| t.get(&c)))
            .and_then(|m| m.flag)
            .into_iter()
            .collect()
    }

    fn status(&self, r: &PointRef) -> Result<Quality, Failed> {
        let code = self.helper(r)?;
        let table = self.d.device.points[r.index]
            .status_codes
            .as_ref()
            .and_then(|name| self.d.device.profile.status_tables.get(name));
        let meaning = u16::try_from(code)
            .ok()
            .and_then(|c| table.and_then(|t| t.get(&c)));
        Ok(match meaning {
            Some(m) => match m.quality {
                CodeQuality::Good => Quality::Good,
                CodeQuality::Uncertain => {
                    Quality::uncertain(Reason::StatusCode, format!("status {code}: {}", m.text))
                }
                CodeQuality::Bad => {
                    return Err(Failed(Quality::bad(
                        Reason::SensorFault,
                        format!("status {code}: {}", m.text),
                    )))
                }
            },
            None => Quality::uncertain(Reason::StatusCode, format!("unknown status code {code}")),
        })
    }
}

/// An f32 widened to f64 shows digits the device never sent (1.6 -> 1.600000023841858).
fn shortest_f32(x: f64) -> f64 {
    format!("{}", x as f32).parse().unwrap_or(x)
}

/// Rounds away binary noise from scaling (23.400000000000002 -> 23.4), keeping 12
/// significant digits, far more than any field instrument resolves.
fn tidy(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = (12 - x.abs().log10().ceil() as i32).clamp(-290, 290);
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
