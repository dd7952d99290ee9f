//! Raw points -> typed `Point`s, with every check a register map needs: the same code for a
//! profile on its own and for a device whose site overrides some fields.

use std::collections::{BTreeMap, HashMap};

use super::model::{
    LoopSpan, MeasuringRange, Point, PointRef, RegisterKind, Simulate, StatusTable,
};
use super::raw::{RawPoint, RawType};
use crate::codec::{DataType, WordOrder};
use crate::error::Diagnostics;

/// What points may refer to besides each other.
pub struct Tables<'a> {
    pub status: &'a BTreeMap<String, StatusTable>,
}

/// A safe identifier: it ends up in JSON, topics and file names.
pub use hazgate_wire::{valid_id, ID_RULE};

/// Resolves a point list; `prefix` names the list in errors, e.g. `point` or
/// `device "GD-101".points`.
pub fn resolve_points(
    raws: &[RawPoint],
    tables: &Tables,
    diag: &mut Diagnostics,
    prefix: &str,
) -> Vec<Point> {
    let mut points = Vec::with_capacity(raws.len());
    let mut ids: HashMap<String, usize> = HashMap::new();
    // Errors elsewhere in the file must not hide this list's cross-checks.
    let errors_before = diag.errors.len();
    for (i, raw) in raws.iter().enumerate() {
        let label = match &raw.id {
            Some(id) => format!("{prefix} \"{}\"", id.get_ref()),
            None => format!("{prefix}[{i}]"),
        };
        let Some(point) = resolve_one(raw, tables, diag, &label) else {
            continue;
        };
        if let Some(first) = ids.insert(point.id.clone(), i) {
            diag.error(
                raw.id.as_ref().map(|s| s.span()),
                format!("{label}.id"),
                format!(
                    "the id \"{}\" is used twice (first by point #{})",
                    point.id,
                    first + 1
                ),
            );
            continue;
        }
        points.push(point);
    }
    if diag.errors.len() == errors_before {
        link_helpers(&mut points, raws, tables, diag, prefix);
        check_overlaps(&points, diag, prefix, raws);
    }
    points
}

fn resolve_one(
    raw: &RawPoint,
    tables: &Tables,
    diag: &mut Diagnostics,
    label: &str,
) -> Option<Point> {
    let errors_before = diag.errors.len();
    let id = match &raw.id {
        Some(id) if valid_id(id.get_ref()) => id.get_ref().clone(),
        Some(id) => {
            diag.error(
                Some(id.span()),
                format!("{label}.id"),
                format!("\"{}\" is not a valid id; {ID_RULE}", id.get_ref()),
            );
            String::new()
        }
        None => {
            diag.error(None, label, "a point needs an `id`");
            String::new()
        }
    };
    let Some(kind) = raw.kind.as_ref().map(|k| *k.get_ref()) else {
        diag.error(None, format!("{label}.kind"), "missing: say which table the point is in: \"coil\", \"discrete\", \"input\" or \"holding\"");
        return None;
    };
    let address = match &raw.address {
        Some(a) if (0..=65535).contains(a.get_ref()) => *a.get_ref() as u16,
        Some(a) => {
            diag.error(
                Some(a.span()),
                format!("{label}.address"),
                format!(
                    "{} is outside the Modbus address space 0..=65535",
                    a.get_ref()
                ),
            );
            0
        }
        None => {
            diag.error(
                None,
                format!("{label}.address"),
                "missing: the register address (0-based, as on the wire)",
            );
            0
        }
    };
    let ty = resolve_type(raw, kind, diag, label)?;
    let point_width = if kind.is_bit() { 1 } else { ty.width() } as u32;
    if address as u32 + point_width > 65536 {
        diag.error(
            raw.address.as_ref().map(|a| a.span()),
            format!("{label}.address"),
            format!(
                "{} registers from {address} run past the end of the address space (65535)",
                point_width
            ),
        );
    }
    let order = raw
        .order
        .as_ref()
        .map(|o| *o.get_ref())
        .unwrap_or(WordOrder::Abcd);
    let numeric =
        !matches!(ty, DataType::Text(_)) && !kind.is_bit() && !matches!(ty, DataType::Bit(_));
    let scale = raw.scale.as_ref().map(|s| (*s.get_ref(), s.span()));
    if let Some((s, span)) = &scale {
        if !s.is_finite() || *s == 0.0 {
            diag.error(
                Some(span.clone()),
                format!("{label}.scale"),
                "must be a finite number other than 0",
            );
        }
    }
    let offset = raw.offset.as_ref().map(|o| *o.get_ref()).unwrap_or(0.0);
    if !offset.is_finite() {
        diag.error(
            raw.offset.as_ref().map(|o| o.span()),
            format!("{label}.offset"),
            "must be a finite number",
        );
    }
    for (field, value) in [
        ("scale", raw.scale.is_some()),
        ("offset", raw.offset.is_some()),
        ("decimals_from", raw.decimals_from.is_some()),
        ("current_loop", raw.current_loop.is_some()),
        ("range", raw.range.is_some()),
    ] {
        if value && !numeric {
            diag.error(
                None,
                format!("{label}.{field}"),
                format!(
                    "only numeric register points take `{field}`; this one is {}",
                    ty.name()
                ),
            );
        }
    }
    let range = raw.range.as_ref().and_then(|r| {
        let [low, high] = *r.get_ref();
        if low.is_finite() && high.is_finite() && low < high {
            Some(MeasuringRange { low, high })
        } else {
            diag.error(
                Some(r.span()),
                format!("{label}.range"),
                "write [low, high] with low below high",
            );
            None
        }
    });
    let loop_span = raw.current_loop.as_ref().and_then(|r| {
        let [low, high] = *r.get_ref();
        if low.is_finite() && high.is_finite() && low != high {
            Some(LoopSpan { low, high })
        } else {
            diag.error(
                Some(r.span()),
                format!("{label}.current_loop"),
                "write [value at 4 mA, value at 20 mA], two different numbers",
            );
            None
        }
    });
    if let Some(table) = &raw.status_codes {
        if !tables.status.contains_key(table.get_ref()) {
            let known: Vec<&String> = tables.status.keys().collect();
            diag.error(
                Some(table.span()),
                format!("{label}.status_codes"),
                format!(
                    "no status code table \"{}\" in this profile; known: {known:?}",
                    table.get_ref()
                ),
            );
        }
    }
    let sim = raw.simulate.clone().unwrap_or_default();
    let simulate = Simulate {
        normal: sim.normal.unwrap_or(0.0),
        noise: sim.noise.unwrap_or(0.0).abs(),
        daily: sim.daily.unwrap_or(0.0),
        per_second: sim.per_second.unwrap_or(0.0),
        follows: None,
    };
    // The unit travels in every reading and becomes a store tag: judged by the same rule
    // as the central ingest, which would refuse every reading of this point otherwise.
    if let Some(u) = &raw.unit {
        if let Err(e) = hazgate_wire::validate::unit(u.get_ref()) {
            diag.error(Some(u.span()), format!("{label}.unit"), e.to_string());
        }
    }
    let point_unit = raw.unit.as_ref().map(|u| u.get_ref().as_str());
    let alarm = raw
        .alarm
        .as_ref()
        .and_then(|a| super::alarm::resolve_alarm_in_unit(a, point_unit, diag, label));
    let item = raw.item.as_ref().map(|i| {
        if !valid_id(i.get_ref()) {
            diag.error(
                Some(i.span()),
                format!("{label}.item"),
                format!(
                    "\"{}\" is not a monitored-item name; {ID_RULE} (e.g. \"phreatic_line\")",
                    i.get_ref()
                ),
            );
        }
        i.get_ref().clone()
    });
    let span = range
        .map(|r| r.high - r.low)
        .or(loop_span.map(|l| l.high - l.low));
    let report = super::report::resolve(raw.report.as_ref(), span, numeric, diag, label);
    if diag.errors.len() > errors_before {
        return None;
    }
    Some(Point {
        name: raw.name.clone().unwrap_or_else(|| id.clone()),
        id,
        kind,
        address,
        ty,
        order,
        scale: scale.map(|s| s.0).unwrap_or(1.0),
        offset,
        decimals_from: None,
        unit: raw.unit.as_ref().map(|u| u.get_ref().clone()),
        unit_from: None,
        status_from: None,
        status_codes: raw.status_codes.as_ref().map(|s| s.get_ref().clone()),
        range,
        loop_span,
        publish: true,
        simulate,
        item,
        alarm,
        report,
    })
}

fn resolve_type(
    raw: &RawPoint,
    kind: RegisterKind,
    diag: &mut Diagnostics,
    label: &str,
) -> Option<DataType> {
    let given = raw.ty.as_ref().map(|t| *t.get_ref());
    let span = raw.ty.as_ref().map(|t| t.span());
    if kind.is_bit() {
        if given.is_some_and(|t| t != RawType::Bit) {
            diag.error(
                span,
                format!("{label}.type"),
                format!(
                    "a {} holds one bit: use type = \"bit\" or leave type out",
                    kind.name()
                ),
            );
            return None;
        }
        if raw.bit.is_some() {
            diag.error(
                raw.bit.as_ref().map(|b| b.span()),
                format!("{label}.bit"),
                format!(
                    "a {} is one bit already; `bit` is for bits inside a register",
                    kind.name()
                ),
            );
            return None;
        }
        return Some(DataType::Bit(0));
    }
    let ty = given.unwrap_or(RawType::U16);
    if ty != RawType::Bit && raw.bit.is_some() {
        diag.error(
            raw.bit.as_ref().map(|b| b.span()),
            format!("{label}.bit"),
            "only type = \"bit\" takes `bit`",
        );
        return None;
    }
    if ty != RawType::String && raw.length.is_some() {
        diag.error(
            raw.length.as_ref().map(|b| b.span()),
            format!("{label}.length"),
            "only type = \"string\" takes `length` (in registers)",
        );
        return None;
    }
    Some(match ty {
        RawType::U16 => DataType::U16,
        RawType::I16 => DataType::I16,
        RawType::U32 => DataType::U32,
        RawType::I32 => DataType::I32,
        RawType::U64 => DataType::U64,
        RawType::I64 => DataType::I64,
        RawType::F32 => DataType::F32,
        RawType::F64 => DataType::F64,
        RawType::Bit => match &raw.bit {
            Some(b) if (0..=15).contains(b.get_ref()) => DataType::Bit(*b.get_ref() as u8),
            Some(b) => {
                diag.error(
                    Some(b.span()),
                    format!("{label}.bit"),
                    format!(
                        "{} is not a bit of a 16-bit register; use 0..=15",
                        b.get_ref()
                    ),
                );
                return None;
            }
            None => {
                diag.error(
                    span,
                    format!("{label}.bit"),
                    "missing: which bit of the register, 0 (least significant) ..= 15",
                );
                return None;
            }
        },
        RawType::String => match &raw.length {
            Some(l) if (1..=125).contains(l.get_ref()) => DataType::Text(*l.get_ref() as u16),
            Some(l) => {
                diag.error(
                    Some(l.span()),
                    format!("{label}.length"),
                    format!(
                        "{} registers cannot be read at once; use 1..=125",
                        l.get_ref()
                    ),
                );
                return None;
            }
            None => {
                diag.error(
                    span,
                    format!("{label}.length"),
                    "missing: how many registers the string occupies (two characters each)",
                );
                return None;
            }
        },
    })
}

/// Resolves `decimals_from`, `unit_from` and `status_from`, and decides which points publish.
fn link_helpers(
    points: &mut [Point],
    raws: &[RawPoint],
    tables: &Tables,
    diag: &mut Diagnostics,
    prefix: &str,
) {
    let index: HashMap<String, usize> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    let mut helper = vec![false; points.len()];
    for (i, raw) in raws.iter().enumerate() {
        let label = format!("{prefix} \"{}\"", points[i].id);
        let mut link = |field: &str,
                        r: &Option<toml::Spanned<String>>,
                        need_status: bool|
         -> Option<PointRef> {
            let r = r.as_ref()?;
            let Some(&j) = index.get(r.get_ref()) else {
                diag.error(
                    Some(r.span()),
                    format!("{label}.{field}"),
                    format!("no point \"{}\" in this device", r.get_ref()),
                );
                return None;
            };
            let target = &points[j];
            if target.kind.is_bit() || !matches!(target.ty, DataType::U16 | DataType::I16) {
                diag.error(
                    Some(r.span()),
                    format!("{label}.{field}"),
                    format!("\"{}\" must be a u16 or i16 register", target.id),
                );
                return None;
            }
            if need_status && target.status_codes.is_none() {
                diag.error(
                    Some(r.span()),
                    format!("{label}.{field}"),
                    format!(
                        "\"{}\" has no `status_codes` table to read codes with",
                        target.id
                    ),
                );
                return None;
            }
            if j == i {
                diag.error(
                    Some(r.span()),
                    format!("{label}.{field}"),
                    "a point cannot describe itself",
                );
                return None;
            }
            helper[j] = true;
            Some(PointRef {
                id: target.id.clone(),
                index: j,
            })
        };
        let decimals = link("decimals_from", &raw.decimals_from, false);
        let unit = link("unit_from", &raw.unit_from, false);
        let status = link("status_from", &raw.status_from, true);
        let follows = raw
            .simulate
            .as_ref()
            .and_then(|s| s.follows.as_ref())
            .and_then(|f| match index.get(f.get_ref()) {
                Some(&j) if j != i => Some(j),
                _ => {
                    diag.error(
                        Some(f.span()),
                        format!("{label}.simulate.follows"),
                        format!(
                            "no other point \"{}\" in this device to follow",
                            f.get_ref()
                        ),
                    );
                    None
                }
            });
        let p = &mut points[i];
        p.simulate.follows = follows;
        p.decimals_from = decimals;
        p.unit_from = unit;
        p.status_from = status;
    }
    let _ = tables;
    for (i, p) in points.iter_mut().enumerate() {
        p.publish = raws[i].publish.unwrap_or(!helper[i]);
    }
}

/// No two points may claim the same registers with different meanings. Bits of one
/// register are distinct meanings of distinct bits, so those may share a register.
fn check_overlaps(points: &[Point], diag: &mut Diagnostics, prefix: &str, raws: &[RawPoint]) {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (points[i].kind, points[i].address));
    for w in 0..order.len() {
        let a = &points[order[w]];
        for &j in &order[w + 1..] {
            let b = &points[j];
            if b.kind != a.kind || b.address as u32 >= a.end() {
                break;
            }
            let distinct_bits = matches!((a.ty, b.ty), (DataType::Bit(x), DataType::Bit(y)) if x != y && !a.kind.is_bit());
            if !distinct_bits {
                // Blame the point written later in the file: in a site, the override that
                // moved or widened it.
                let written_at = |k: usize| raws[k].address.as_ref().map(|s| s.span().start);
                let (a, (b, j)) = if written_at(order[w]) > written_at(j) {
                    (b, (a, order[w]))
                } else {
                    (a, (b, j))
                };
                diag.error(
                    raws[j].address.as_ref().map(|s| s.span()),
                    format!("{prefix} \"{}\".address", b.id),
                    format!(
                        "{} {} at {} overlaps \"{}\" ({} {}..{}); two points cannot claim the same registers",
                        b.kind.name(), b.ty.name(), b.address, a.id, a.kind.name(), a.address, a.end() - 1
                    ),
                );
            }
        }
    }
}
