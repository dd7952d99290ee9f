//! One action on the simulated plant: the body of a scenario event and of a control
//! command alike, so a drill written in a file and one typed by hand mean the same.

use std::time::Duration;

use firmware_config::profile::CodeQuality;
use firmware_config::quantity::parse_duration;
use firmware_config::{Device, SiteConfig};
use serde::{Deserialize, Deserializer};

use crate::fault::{DeviceFault, PointFault, KINDS, NE43_FAULT_MA, NE43_UNCERTAIN_MA};

/// A duration written as "500ms", "10s", "2min" (in scenario files and JSON alike).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// A command as written. Unknown fields are refused: a misspelt action in a drill must
/// not pass silently.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    /// Scenario files only: when, in simulated time since start.
    pub at: Option<Dur>,
    pub device: String,
    pub point: Option<String>,
    pub set: Option<f64>,
    pub ramp: Option<RawRamp>,
    pub normal: Option<f64>,
    pub release: Option<bool>,
    pub fault: Option<RawFault>,
    pub clear_fault: Option<bool>,
    /// Control only: report the point's value and registers.
    pub read: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRamp {
    pub to: f64,
    pub over: Dur,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub kind: String,
    #[serde(rename = "for")]
    pub duration: Option<Dur>,
    pub code: Option<i64>,
    pub delay: Option<Dur>,
}

/// What a command does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Set(f64),
    Ramp {
        to: f64,
        over: f64,
    },
    Normal(f64),
    Release,
    DeviceFault {
        fault: DeviceFault,
        duration: Option<f64>,
    },
    PointFault {
        fault: PointFault,
        duration: Option<f64>,
    },
    ClearFault,
    Read,
}

/// As the simulator's log says it: `set 30`, `device fault silent for 5 s`.
impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let until = |d: &Option<f64>| {
            d.map_or_else(|| " until cleared".to_string(), |s| format!(" for {s} s"))
        };
        match self {
            Action::Set(v) => write!(f, "set {v}"),
            Action::Ramp { to, over } => write!(f, "ramp to {to} over {over} s"),
            Action::Normal(v) => write!(f, "normal {v}"),
            Action::Release => write!(f, "release"),
            Action::DeviceFault { fault, duration } => {
                let what = match fault {
                    DeviceFault::Silent => "silent".to_string(),
                    DeviceFault::Slow(d) => format!("replies after {} ms", d.as_millis()),
                    DeviceFault::Exception(c) => format!("exception {c:02X}"),
                    DeviceFault::Corrupt => "corrupt replies".to_string(),
                };
                write!(f, "device fault: {what}{}", until(duration))
            }
            Action::PointFault { fault, duration } => {
                let what = match fault {
                    PointFault::Current(ma) => format!("loop current {ma} mA"),
                    PointFault::Value(v) => format!("value {v}"),
                    PointFault::Status { code, .. } => format!("status code {code}"),
                };
                write!(f, "point fault: {what}{}", until(duration))
            }
            Action::ClearFault => write!(f, "clear fault"),
            Action::Read => write!(f, "read"),
        }
    }
}

/// A command checked against the site: indexes instead of names.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub device: usize,
    pub point: Option<usize>,
    pub action: Action,
}

/// A problem with one command: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// Where a command comes from: the two differ only in `at` and `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Scenario,
    Control,
}

/// Checks a command against the site and resolves its names.
pub fn resolve(raw: &RawCommand, site: &SiteConfig, origin: Origin) -> Result<Command, Invalid> {
    match origin {
        Origin::Scenario if raw.at.is_none() => {
            return Err(invalid(
                "at",
                "missing: when the event happens, e.g. at = \"10s\"",
            ))
        }
        Origin::Scenario if raw.read.is_some() => {
            return Err(invalid(
                "read",
                "`read` is a control command; a scenario changes things",
            ))
        }
        Origin::Control if raw.at.is_some() => {
            return Err(invalid(
                "at",
                "control commands act at once; `at` belongs in scenario files",
            ))
        }
        _ => {}
    }
    let (device_index, device) = site
        .devices
        .iter()
        .enumerate()
        .find(|(_, d)| d.id == raw.device)
        .ok_or_else(|| {
            let known: Vec<&str> = site.devices.iter().map(|d| d.id.as_str()).collect();
            invalid(
                "device",
                format!("no device \"{}\"; the site has {known:?}", raw.device),
            )
        })?;
    let point = match &raw.point {
        Some(id) => Some(
            device
                .points
                .iter()
                .position(|p| &p.id == id)
                .ok_or_else(|| {
                    let known: Vec<&str> = device.points.iter().map(|p| p.id.as_str()).collect();
                    invalid(
                        "point",
                        format!(
                            "device \"{}\" has no point \"{id}\"; its points: {known:?}",
                            device.id
                        ),
                    )
                })?,
        ),
        None => None,
    };

    let given: Vec<&str> = [
        ("set", raw.set.is_some()),
        ("ramp", raw.ramp.is_some()),
        ("normal", raw.normal.is_some()),
        ("release", raw.release.is_some()),
        ("fault", raw.fault.is_some()),
        ("clear_fault", raw.clear_fault.is_some()),
        ("read", raw.read.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| *name)
    .collect();
    let actions = match origin {
        Origin::Scenario => "set, ramp, normal, release, fault or clear_fault",
        Origin::Control => "set, ramp, normal, release, fault, clear_fault or read",
    };
    if given.len() != 1 {
        let what = if given.is_empty() {
            "none".to_string()
        } else {
            given.join(" and ")
        };
        return Err(invalid(
            "action",
            format!("give exactly one action ({actions}); found {what}"),
        ));
    }
    let need_point = |field: &'static str| {
        point.ok_or_else(|| {
            invalid(
                field,
                format!("`{field}` acts on a point: add point = \"...\""),
            )
        })
    };
    let finite = |field: &'static str, v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(invalid(field, "must be a finite number"))
        }
    };
    let yes = |field: &'static str, v: Option<bool>| {
        if v == Some(true) {
            Ok(())
        } else {
            Err(invalid(
                field,
                format!("write {field} = true, or leave it out"),
            ))
        }
    };
    let action = if let Some(v) = raw.set {
        need_point("set")?;
        Action::Set(finite("set", v)?)
    } else if let Some(r) = &raw.ramp {
        need_point("ramp")?;
        Action::Ramp {
            to: finite("ramp.to", r.to)?,
            over: r.over.0.as_secs_f64(),
        }
    } else if let Some(v) = raw.normal {
        need_point("normal")?;
        Action::Normal(finite("normal", v)?)
    } else if raw.release.is_some() {
        yes("release", raw.release)?;
        need_point("release")?;
        Action::Release
    } else if raw.clear_fault.is_some() {
        yes("clear_fault", raw.clear_fault)?;
        Action::ClearFault
    } else if raw.read.is_some() {
        yes("read", raw.read)?;
        need_point("read")?;
        Action::Read
    } else {
        let f = raw.fault.as_ref().expect("one action is given");
        resolve_fault(f, device, point)?
    };
    Ok(Command {
        device: device_index,
        point,
        action,
    })
}

fn resolve_fault(f: &RawFault, device: &Device, point: Option<usize>) -> Result<Action, Invalid> {
    let duration = f.duration.map(|d| d.0.as_secs_f64());
    let device_kind = matches!(f.kind.as_str(), "silent" | "slow" | "exception" | "corrupt");
    if device_kind && point.is_some() {
        return Err(invalid(
            "fault.kind",
            format!(
                "\"{}\" is a fault of the whole device; leave out `point`",
                f.kind
            ),
        ));
    }
    if f.delay.is_some() && f.kind != "slow" {
        return Err(invalid("fault.delay", "only kind = \"slow\" takes `delay`"));
    }
    if f.code.is_some() && !matches!(f.kind.as_str(), "exception" | "status") {
        return Err(invalid(
            "fault.code",
            "only kinds \"exception\" and \"status\" take `code`",
        ));
    }
    let device_fault = |fault| Ok(Action::DeviceFault { fault, duration });
    let point_fault = |fault| Ok(Action::PointFault { fault, duration });
    match f.kind.as_str() {
        "silent" => device_fault(DeviceFault::Silent),
        "corrupt" => device_fault(DeviceFault::Corrupt),
        "slow" => {
            let delay = f.delay.ok_or_else(|| {
                invalid(
                    "fault.delay",
                    "missing: how late replies come, e.g. delay = \"2s\"",
                )
            })?;
            device_fault(DeviceFault::Slow(delay.0))
        }
        "exception" => {
            let code = f.code.unwrap_or(4);
            if !(1..=255).contains(&code) {
                return Err(invalid("fault.code", format!("{code} is not a Modbus exception code; use 1..=255 (e.g. 4 server device failure, 6 busy)")));
            }
            device_fault(DeviceFault::Exception(code as u8))
        }
        "sensor_fault" | "status" | "out_of_range" => {
            let i = point.ok_or_else(|| {
                invalid(
                    "point",
                    format!("fault \"{}\" acts on a point: add point = \"...\"", f.kind),
                )
            })?;
            let p = &device.points[i];
            // The status register of a value is its `status_from`; a status register is its own.
            let status_register = p
                .status_from
                .as_ref()
                .map(|r| r.index)
                .or(p.status_codes.as_ref().map(|_| i));
            match f.kind.as_str() {
                "sensor_fault" => {
                    if p.loop_span.is_some() {
                        return point_fault(PointFault::Current(NE43_FAULT_MA));
                    }
                    let register = status_register.ok_or_else(|| {
                        invalid("fault.kind", format!("point \"{}\" has neither a 4-20 mA loop nor a status register to show a sensor fault", p.id))
                    })?;
                    let table = device.points[register]
                        .status_codes
                        .as_deref()
                        .and_then(|t| device.profile.status_tables.get(t));
                    let code = table
                        .and_then(|t| {
                            t.iter()
                                .find(|(_, c)| c.quality == CodeQuality::Bad)
                                .map(|(code, _)| *code)
                        })
                        .ok_or_else(|| {
                            invalid(
                                "fault.kind",
                                format!(
                                    "the status table of \"{}\" has no code with quality \"bad\"",
                                    device.points[register].id
                                ),
                            )
                        })?;
                    point_fault(PointFault::Status { register, code })
                }
                "status" => {
                    let register = status_register.ok_or_else(|| {
                        invalid(
                            "point",
                            format!("point \"{}\" has no status register", p.id),
                        )
                    })?;
                    let code = f
                        .code
                        .ok_or_else(|| invalid("fault.code", "missing: the status code to show"))?;
                    let code = u16::try_from(code).map_err(|_| {
                        invalid(
                            "fault.code",
                            format!("{code} does not fit a register; use 0..=65535"),
                        )
                    })?;
                    point_fault(PointFault::Status { register, code })
                }
                _ => {
                    if p.loop_span.is_some() {
                        return point_fault(PointFault::Current(NE43_UNCERTAIN_MA));
                    }
                    let r = p.range.ok_or_else(|| {
                        invalid("fault.kind", format!("point \"{}\" has neither a 4-20 mA loop nor a `range` to go out of", p.id))
                    })?;
                    point_fault(PointFault::Value(r.high + 0.1 * (r.high - r.low)))
                }
            }
        }
        other => Err(invalid(
            "fault.kind",
            format!("\"{other}\" is not a fault kind; use {KINDS}"),
        )),
    }
}
