//! Derived points: quantities the standards judge that no device measures, computed at the
//! edge from other points of the site and then treated like any point (telemetry, alarms,
//! roll-up). A small, closed set of operations, no scripting:
//!
//! - `difference = [a, b]`: a − b, each a number or a point (freeboard 安全超高 = crest
//!   elevation − pond level);
//! - `magnitude = ["DISP_E", "DISP_N"]`: √(Σ x²) (GNSS horizontal displacement);
//! - `total = { of = "RAIN_TOTAL", over = "1h" }`: what a counter added over the window,
//!   or, for a point in a unit per time (`mm/h`), its integral over the window (rainfall
//!   totals over 1 h and 24 h);
//! - `rate = { of = "DISP_H", over = "6h", per = "1d" }`: the change over the window per
//!   `per` (displacement rate in mm/d).
//!
//! A point is written `POINT` (same device) or `DEVICE.POINT`; a derived point may use
//! another one, in any order, as long as none depends on itself.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use toml::Spanned;

use crate::alarm::{AlarmSpec, PointAt};
use crate::error::Diagnostics;
use crate::profile::alarm::RawAlarm;
use crate::profile::resolve::{valid_id, ID_RULE};
use crate::serde_types::Interval;
use crate::site::model::Device;
use crate::site::raw::RawDevice;

/// One derived point; its readings carry `device`'s id and it belongs to that device's
/// hazard source.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// Index into `SiteConfig::devices`.
    pub device: usize,
    pub id: String,
    pub name: String,
    pub unit: Option<String>,
    pub item: Option<String>,
    pub op: DerivedOp,
    pub alarm: Option<AlarmSpec>,
    /// When its readings are published, as for any point.
    pub report: crate::profile::report::Report,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Constant(f64),
    Point(PointAt),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DerivedOp {
    Difference(Operand, Operand),
    Magnitude(Vec<PointAt>),
    /// What `of` added over `over`: a counter's growth (resets skipped), or, with `per`
    /// (the input is a rate per that time), its integral.
    Total {
        of: PointAt,
        over: Duration,
        per: Option<Duration>,
    },
    /// The change of `of` over `over`, per `per`.
    Rate {
        of: PointAt,
        over: Duration,
        per: Duration,
    },
}

impl DerivedOp {
    /// The points it reads.
    pub fn inputs(&self) -> Vec<&PointAt> {
        match self {
            DerivedOp::Difference(a, b) => [a, b]
                .into_iter()
                .filter_map(|o| match o {
                    Operand::Point(p) => Some(p),
                    Operand::Constant(_) => None,
                })
                .collect(),
            DerivedOp::Magnitude(points) => points.iter().collect(),
            DerivedOp::Total { of, .. } | DerivedOp::Rate { of, .. } => vec![of],
        }
    }

    pub fn describe(&self) -> String {
        let p = |p: &PointAt| format!("{}.{}", p.device, p.point);
        let o = |o: &Operand| match o {
            Operand::Constant(x) => x.to_string(),
            Operand::Point(at) => p(at),
        };
        let d = crate::quantity::format_duration;
        match self {
            DerivedOp::Difference(a, b) => format!("{} − {}", o(a), o(b)),
            DerivedOp::Magnitude(v) => {
                let names: Vec<String> = v.iter().map(|x| format!("{}²", p(x))).collect();
                format!("√({})", names.join(" + "))
            }
            DerivedOp::Total {
                of,
                over,
                per: None,
            } => {
                format!("growth of {} over {}", p(of), d(*over))
            }
            DerivedOp::Total {
                of,
                over,
                per: Some(_),
            } => {
                format!("integral of {} over {}", p(of), d(*over))
            }
            DerivedOp::Rate { of, over, per } => {
                format!("change of {} over {}, per {}", p(of), d(*over), d(*per))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDerived {
    pub name: Option<String>,
    pub unit: Option<Spanned<String>>,
    pub item: Option<Spanned<String>>,
    pub difference: Option<Spanned<Vec<RawOperand>>>,
    pub magnitude: Option<Spanned<Vec<String>>>,
    pub total: Option<Spanned<RawTotal>>,
    pub rate: Option<Spanned<RawRateOf>>,
    pub alarm: Option<Spanned<RawAlarm>>,
    pub report: Option<Spanned<crate::profile::report::RawReport>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawOperand {
    Number(f64),
    Point(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTotal {
    pub of: String,
    pub over: Interval,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateOf {
    pub of: String,
    pub over: Interval,
    pub per: Interval,
}

const MIN_WINDOW: Duration = Duration::from_secs(60);
const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// The time units a rate may be per, and how a unit names them.
const PER: [(Duration, &str); 4] = [
    (Duration::from_secs(1), "s"),
    (Duration::from_secs(60), "min"),
    (Duration::from_secs(3600), "h"),
    (Duration::from_secs(86_400), "d"),
];

/// A unit per time ("mm/h"): the amount's unit and the time.
fn per_time(unit: &str) -> Option<(&str, Duration)> {
    let (amount, time) = unit.rsplit_once('/')?;
    let (per, _) = PER.iter().find(|(_, name)| *name == time)?;
    (!amount.is_empty()).then_some((amount, *per))
}

/// One derived point before its inputs are known to exist.
struct Pending<'a> {
    device: usize,
    key: &'a Spanned<String>,
    raw: &'a RawDerived,
    label: String,
    op: DerivedOp,
}

/// Resolves every device's `derived` table into points in evaluation order (each after
/// the derived points it reads).
pub fn resolve_derived(
    devices: &[Device],
    raw: &[RawDevice],
    diag: &mut Diagnostics,
) -> Vec<Derived> {
    // Units of everything a derived point may read, by (device, point).
    let mut known: HashMap<(String, String), Option<String>> = HashMap::new();
    for d in devices {
        for p in d.points.iter().filter(|p| p.publish) {
            known.insert((d.id.clone(), p.id.clone()), p.unit.clone());
        }
    }
    let mut pending = Vec::new();
    for rd in raw {
        let Some(device) = devices.iter().position(|d| &d.id == rd.id.get_ref()) else {
            continue;
        };
        let d = &devices[device];
        for (key, r) in &rd.derived {
            let label = format!("device \"{}\".derived.{}", d.id, key.get_ref());
            if !valid_id(key.get_ref()) {
                diag.error(
                    Some(key.span()),
                    &label,
                    format!("\"{}\" is not a valid point id; {ID_RULE}", key.get_ref()),
                );
                continue;
            }
            if d.points.iter().any(|p| &p.id == key.get_ref()) {
                diag.error(
                    Some(key.span()),
                    &label,
                    format!(
                        "the device already has a point \"{}\" (profile \"{}\"); give the derived point another id",
                        key.get_ref(),
                        d.profile.model
                    ),
                );
                continue;
            }
            if let Some(op) = parse_op(&d.id, key, r, &label, diag) {
                pending.push(Pending {
                    device,
                    key,
                    raw: r,
                    label,
                    op,
                });
            }
        }
    }
    let derived_ids: Vec<(String, String)> = pending
        .iter()
        .map(|p| (devices[p.device].id.clone(), p.key.get_ref().clone()))
        .collect();
    let mut out = Vec::new();
    let mut left: Vec<Pending> = Vec::new();
    // Refuse inputs that name nothing; keep the rest for ordering.
    for p in pending {
        let mut ok = true;
        for at in p.op.inputs() {
            let k = (at.device.clone(), at.point.clone());
            if !known.contains_key(&k) && !derived_ids.contains(&k) {
                ok = false;
                diag.error(
                    Some(p.key.span()),
                    &p.label,
                    format!(
                        "no point \"{}.{}\" to read (a register point the gateway publishes, or another derived point)",
                        at.device, at.point
                    ),
                );
            }
        }
        if ok {
            left.push(p);
        }
    }
    // Each pass settles those whose inputs are all settled; no progress means a cycle.
    loop {
        let before = left.len();
        let mut still = Vec::new();
        for p in left {
            let ready =
                p.op.inputs()
                    .iter()
                    .all(|at| known.contains_key(&(at.device.clone(), at.point.clone())));
            if !ready {
                still.push(p);
                continue;
            }
            let id = (devices[p.device].id.clone(), p.key.get_ref().clone());
            let derived = settle(p, &known, diag);
            known.insert(id, derived.as_ref().and_then(|d| d.unit.clone()));
            out.extend(derived);
        }
        left = still;
        if left.is_empty() || left.len() == before {
            break;
        }
    }
    for p in left {
        diag.error(
            Some(p.key.span()),
            &p.label,
            "it depends on itself through other derived points; a derived point cannot read its own result",
        );
    }
    out
}

/// `POINT` on `device`, or `DEVICE.POINT`.
fn point_at(device: &str, text: &str) -> PointAt {
    match text.split_once('.') {
        Some((d, p)) => PointAt {
            device: d.to_string(),
            point: p.to_string(),
        },
        None => PointAt {
            device: device.to_string(),
            point: text.to_string(),
        },
    }
}

fn window(w: Duration, span: std::ops::Range<usize>, field: String, diag: &mut Diagnostics) {
    if !(MIN_WINDOW..=MAX_WINDOW).contains(&w) {
        diag.error(
            Some(span),
            field,
            "use a window from 1min to 7d, e.g. \"1h\"",
        );
    }
}

fn parse_op(
    device: &str,
    key: &Spanned<String>,
    r: &RawDerived,
    label: &str,
    diag: &mut Diagnostics,
) -> Option<DerivedOp> {
    let given = [
        r.difference.is_some(),
        r.magnitude.is_some(),
        r.total.is_some(),
        r.rate.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        diag.error(
            Some(key.span()),
            label,
            "give exactly one of `difference`, `magnitude`, `total` or `rate`",
        );
        return None;
    }
    if let Some(d) = &r.difference {
        let operand = |o: &RawOperand| match o {
            RawOperand::Number(x) => Operand::Constant(*x),
            RawOperand::Point(p) => Operand::Point(point_at(device, p)),
        };
        return match d.get_ref().as_slice() {
            [a, b] if [a, b].iter().any(|o| matches!(o, RawOperand::Point(_))) => {
                Some(DerivedOp::Difference(operand(a), operand(b)))
            }
            _ => {
                diag.error(
                    Some(d.span()),
                    format!("{label}.difference"),
                    "give two operands, at least one a point, e.g. [316.0, \"WATER_LEVEL\"]",
                );
                None
            }
        };
    }
    if let Some(m) = &r.magnitude {
        if !(1..=3).contains(&m.get_ref().len()) {
            diag.error(
                Some(m.span()),
                format!("{label}.magnitude"),
                "give one to three points, e.g. [\"DISP_E\", \"DISP_N\"]",
            );
            return None;
        }
        return Some(DerivedOp::Magnitude(
            m.get_ref().iter().map(|p| point_at(device, p)).collect(),
        ));
    }
    if let Some(t) = &r.total {
        window(
            t.get_ref().over.0,
            t.span(),
            format!("{label}.total.over"),
            diag,
        );
        return Some(DerivedOp::Total {
            of: point_at(device, &t.get_ref().of),
            over: t.get_ref().over.0,
            per: None,
        });
    }
    let rt = r.rate.as_ref()?;
    let rate = rt.get_ref();
    window(rate.over.0, rt.span(), format!("{label}.rate.over"), diag);
    if !PER.iter().any(|(d, _)| *d == rate.per.0) {
        diag.error(
            Some(rt.span()),
            format!("{label}.rate.per"),
            "use \"1s\", \"1min\", \"1h\" or \"1d\" (the unit becomes e.g. mm/d)",
        );
        return None;
    }
    Some(DerivedOp::Rate {
        of: point_at(device, &rate.of),
        over: rate.over.0,
        per: rate.per.0,
    })
}

/// Works out the unit from the inputs' and checks what the site wrote against it.
fn settle(
    p: Pending,
    known: &HashMap<(String, String), Option<String>>,
    diag: &mut Diagnostics,
) -> Option<Derived> {
    let unit_of = |at: &PointAt| {
        known
            .get(&(at.device.clone(), at.point.clone()))
            .cloned()
            .flatten()
    };
    let errors_before = diag.errors.len();
    let mut op = p.op;
    let inferred = match &mut op {
        DerivedOp::Difference(..) | DerivedOp::Magnitude(_) => {
            let units: Vec<Option<String>> = op.inputs().into_iter().map(unit_of).collect();
            if units.windows(2).any(|w| w[0] != w[1]) {
                diag.error(
                    Some(p.key.span()),
                    &p.label,
                    format!("its points are in different units ({units:?}); only like quantities combine"),
                );
            }
            units.into_iter().next().flatten()
        }
        DerivedOp::Total { of, per, .. } => {
            let u = unit_of(of);
            match u.as_deref().and_then(per_time) {
                // A rate per time integrates to an amount.
                Some((amount, time)) => {
                    *per = Some(time);
                    Some(amount.to_string())
                }
                None => u,
            }
        }
        DerivedOp::Rate { of, per, .. } => {
            let time = PER.iter().find(|(d, _)| d == per).map_or("?", |(_, n)| *n);
            unit_of(of).map(|u| format!("{u}/{time}"))
        }
    };
    let unit = match (&p.raw.unit, inferred) {
        (Some(w), Some(i)) if *w.get_ref() != i => {
            diag.error(
                Some(w.span()),
                format!("{}.unit", p.label),
                format!(
                    "the result is in \"{i}\" (from its inputs), not \"{}\"",
                    w.get_ref()
                ),
            );
            Some(i)
        }
        (w, i) => i.or_else(|| w.as_ref().map(|w| w.get_ref().clone())),
    };
    if let Some(u) = &unit {
        if let Err(e) = hazgate_wire::validate::unit(u) {
            diag.error(
                Some(p.key.span()),
                format!("{}.unit", p.label),
                e.to_string(),
            );
        }
    }
    let item = p.raw.item.as_ref().map(|i| {
        if !valid_id(i.get_ref()) {
            diag.error(
                Some(i.span()),
                format!("{}.item", p.label),
                format!(
                    "\"{}\" is not a monitored-item name; {ID_RULE}",
                    i.get_ref()
                ),
            );
        }
        i.get_ref().clone()
    });
    let alarm = p.raw.alarm.as_ref().and_then(|a| {
        crate::profile::alarm::resolve_alarm_in_unit(a, unit.as_deref(), diag, &p.label)
    });
    // A derived point has no measuring range: its deadband is in its unit.
    let report = crate::profile::report::resolve(p.raw.report.as_ref(), None, true, diag, &p.label);
    if diag.errors.len() > errors_before {
        return None;
    }
    Some(Derived {
        device: p.device,
        id: p.key.get_ref().clone(),
        name: p
            .raw
            .name
            .clone()
            .unwrap_or_else(|| p.key.get_ref().clone()),
        unit,
        item,
        op,
        alarm,
        report,
    })
}

/// The derived tables of a device as written, for the raw device.
pub type RawDerivedTable = BTreeMap<Spanned<String>, RawDerived>;
