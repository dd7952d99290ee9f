//! Raw site -> `SiteConfig`: defaults, limits, and every cross-reference checked.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::model::*;
use super::raw::*;
use crate::error::{ConfigError, ConfigErrors, Diagnostics, SourceText};
use crate::profile::raw::RawPoint;
use crate::profile::resolve::{resolve_points, valid_id, Tables, ID_RULE};
use crate::profile::{find_profile, LoadedProfile};
use crate::quantity::format_duration;

pub use super::sections::parse_broker;
use super::sections::{fnv1a_hex, resolve_listen, resolve_store, resolve_uplink};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const MIN_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(86_400);
const MIN_TIMEOUT: Duration = Duration::from_millis(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
const BAUDS: [i64; 9] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400];

/// Reads, parses and checks a site file and the profiles it names.
pub fn load_site(path: &Path) -> Result<SiteConfig, ConfigErrors> {
    let source = SourceText::read(path)?;
    parse_site(&source)
}

/// Parses and checks a site from text; `source.path` anchors relative paths and errors.
pub fn parse_site(source: &SourceText) -> Result<SiteConfig, ConfigErrors> {
    let raw: RawSiteFile = toml::from_str(&source.text).map_err(|e| {
        let mut error = source.toml_error(&e);
        if error.message.starts_with("unknown field `password`") {
            error.message.push_str(
                "; a password is never written into the config: use `password_file` or `password_env`",
            );
        }
        ConfigErrors(vec![error])
    })?;
    let mut diag = Diagnostics::new(source);
    let mut foreign: Vec<ConfigError> = Vec::new();
    let base = source.path.parent().unwrap_or(Path::new(".")).to_path_buf();

    let site = SiteInfo {
        id: checked_id(&raw.site.id, "site.id", &mut diag),
        name: raw.site.name.clone(),
        gateway: checked_id(&raw.site.gateway, "site.gateway", &mut diag),
        ack_button: raw.site.ack_button.as_ref().map(|b| crate::alarm::PointAt {
            device: b.device.clone(),
            point: b.point.clone(),
        }),
        division: raw.site.division.as_ref().map(|d| {
            let v = d.get_ref();
            if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                diag.error(
                    Some(d.span()),
                    "site.division",
                    "an administrative-division code is digits, e.g. \"420100\"",
                );
            }
            v.clone()
        }),
        address: raw.site.address.as_ref().map(|a| {
            if let Err(e) = hazgate_wire::validate::text("address", a.get_ref()) {
                diag.error(Some(a.span()), "site.address", e.to_string());
            }
            a.get_ref().clone()
        }),
        industry: raw.site.industry,
    };
    let profile_dirs: Vec<PathBuf> = raw.site.profile_dirs.iter().map(|d| base.join(d)).collect();
    let uplink = raw.uplink.as_ref().and_then(|u| {
        let client_id = format!("hazgate-{}-{}", site.id, site.gateway);
        resolve_uplink(u, "uplink", client_id, &base, &mut diag)
    });
    let store = resolve_store(raw.store.as_ref(), &base, &mut diag);
    let metrics = raw
        .metrics
        .as_ref()
        .and_then(|m| resolve_listen(&m.listen, "metrics.listen", &mut diag));

    let mut hazard_sources = Vec::new();
    let mut hs_index = HashMap::new();
    for hs in &raw.hazard_sources {
        let id = checked_id(&hs.id, "hazard_source.id", &mut diag);
        if hs_index.insert(id.clone(), hazard_sources.len()).is_some() {
            diag.error(
                Some(hs.id.span()),
                "hazard_source.id",
                format!("hazard source \"{id}\" is defined twice"),
            );
        }
        let grade = *hs.grade.get_ref();
        if !(1..=4).contains(&grade) {
            diag.error(
                Some(hs.grade.span()),
                format!("hazard_source \"{id}\".grade"),
                format!("{grade} is not a major-hazard grade; use 1 (most severe) ..= 4"),
            );
        }
        let cross_item = match &hs.cross_item {
            Some(c) => {
                let r = *c.get_ref();
                if [r.blue, r.yellow, r.orange].iter().any(|&n| n < 1) {
                    diag.error(
                        Some(c.span()),
                        format!("hazard_source \"{}\".cross_item", hs.id.get_ref()),
                        "each count must be at least 1; GB 39496 counts { blue = 4, yellow = 3, orange = 2 }",
                    );
                }
                if hs.rollup != Rollup::Gb39496 {
                    diag.error(
                        Some(c.span()),
                        format!("hazard_source \"{}\".cross_item", hs.id.get_ref()),
                        "only means something with rollup = \"gb39496\"",
                    );
                }
                r
            }
            None => CountRule::GB39496,
        };
        let kind = hs.kind.as_ref().map(|k| {
            if let Err(e) = hazgate_wire::validate::text("kind", k.get_ref()) {
                diag.error(
                    Some(k.span()),
                    format!("hazard_source \"{id}\".kind"),
                    e.to_string(),
                );
            }
            k.get_ref().clone()
        });
        hazard_sources.push(HazardSource {
            kind,
            id,
            name: hs.name.clone(),
            grade: grade.clamp(1, 4) as u8,
            rollup: hs.rollup,
            cross_item,
        });
    }

    let mut buses = Vec::new();
    let mut bus_index = HashMap::new();
    let mut serial_ports: HashMap<PathBuf, String> = HashMap::new();
    for b in &raw.buses {
        let id = checked_id(&b.id, "bus.id", &mut diag);
        let Some(bus) = resolve_bus(b, &id, &base, &mut diag) else {
            continue;
        };
        if let Link::Rtu(line) = &bus.link {
            if let Some(other) = serial_ports.insert(line.port.clone(), id.clone()) {
                diag.error(
                    Some(b.id.span()),
                    format!("bus \"{id}\".rtu.port"),
                    format!(
                        "{} is already the port of bus \"{other}\"; one RS-485 line is one bus",
                        line.port.display()
                    ),
                );
            }
        }
        if bus_index.insert(id.clone(), buses.len()).is_some() {
            diag.error(
                Some(b.id.span()),
                "bus.id",
                format!("bus \"{id}\" is defined twice"),
            );
            continue;
        }
        buses.push(bus);
    }

    let mut profiles: BTreeMap<String, Option<Arc<LoadedProfile>>> = BTreeMap::new();
    let mut devices = Vec::new();
    let mut device_ids = HashMap::new();
    let mut units: HashMap<(usize, u8), String> = HashMap::new();
    for d in &raw.devices {
        let id = checked_id(&d.id, "device.id", &mut diag);
        let label = format!("device \"{id}\"");
        if device_ids.insert(id.clone(), ()).is_some() {
            diag.error(
                Some(d.id.span()),
                "device.id",
                format!("device \"{id}\" is defined twice"),
            );
        }
        let bus = match bus_index.get(d.bus.get_ref()) {
            Some(&b) => Some(b),
            None => {
                let known: Vec<&String> = bus_index.keys().collect();
                diag.error(
                    Some(d.bus.span()),
                    format!("{label}.bus"),
                    format!("no bus \"{}\"; defined buses: {known:?}", d.bus.get_ref()),
                );
                None
            }
        };
        let unit = *d.unit.get_ref();
        if !(1..=247).contains(&unit) {
            diag.error(
                Some(d.unit.span()),
                format!("{label}.unit"),
                format!("{unit} is not a Modbus unit id; use 1..=247"),
            );
        }
        let unit = unit.clamp(1, 247) as u8;
        if let Some(b) = bus {
            if let Some(other) = units.insert((b, unit), id.clone()) {
                diag.error(
                    Some(d.unit.span()),
                    format!("{label}.unit"),
                    format!(
                        "unit {unit} on bus \"{}\" is already device \"{other}\"",
                        buses[b].id
                    ),
                );
            }
        }
        let hazard_source =
            d.hazard_source
                .as_ref()
                .and_then(|h| match hs_index.get(h.get_ref()) {
                    Some(&i) => Some(i),
                    None => {
                        let known: Vec<&String> = hs_index.keys().collect();
                        diag.error(
                            Some(h.span()),
                            format!("{label}.hazard_source"),
                            format!("no hazard source \"{}\"; defined: {known:?}", h.get_ref()),
                        );
                        None
                    }
                });
        let poll = d.poll.get_ref().0;
        let poll_ok = (MIN_POLL..=MAX_POLL).contains(&poll);
        if !poll_ok {
            diag.error(
                Some(d.poll.span()),
                format!("{label}.poll"),
                format!("{} is outside 50ms ..= 24h", format_duration(poll)),
            );
        }
        let poll_in_alarm = d.poll_in_alarm.as_ref().map(|p| {
            let v = p.get_ref().0;
            if !(MIN_POLL..=poll).contains(&v) {
                diag.error(
                    Some(p.span()),
                    format!("{label}.poll_in_alarm"),
                    format!(
                        "{} must lie within 50ms ..= the device's poll ({})",
                        format_duration(v),
                        format_duration(poll)
                    ),
                );
            }
            v
        });
        let bus_timeout_given = raw
            .buses
            .iter()
            .any(|b| b.id.get_ref() == d.bus.get_ref() && b.timeout.is_some());
        let (timeout, inherited_from) = match (&d.timeout, bus) {
            (Some(t), _) => (
                checked_timeout(t, &format!("{label}.timeout"), &mut diag),
                None,
            ),
            (None, Some(b)) if bus_timeout_given => (buses[b].timeout, Some(&buses[b].id)),
            // Nobody set one: the default, but never as long as a fast poll interval.
            _ => (DEFAULT_TIMEOUT.min(poll / 2).max(MIN_TIMEOUT), None),
        };
        if poll_ok && timeout >= poll {
            let span = d
                .timeout
                .as_ref()
                .map(|t| t.span())
                .unwrap_or(d.poll.span());
            let from = match inherited_from {
                Some(bus) => format!(", from bus \"{bus}\""),
                None => String::new(),
            };
            diag.error(Some(span), format!("{label}.timeout"), format!(
                "the timeout ({}{from}) must be shorter than the poll interval ({}), or one silent device holds its line for a whole cycle",
                format_duration(timeout), format_duration(poll)
            ));
        }
        let model = d.profile.get_ref();
        let loaded = profiles
            .entry(model.clone())
            .or_insert_with(|| match find_profile(model, &profile_dirs) {
                Some(Ok(p)) => Some(Arc::new(p)),
                Some(Err(e)) => {
                    foreign.extend(e.0);
                    None
                }
                None => {
                    diag.error(
                        Some(d.profile.span()),
                        format!("{label}.profile"),
                        format!(
                            "no profile \"{model}\" {}among the built-in ones: {:?}",
                            if profile_dirs.is_empty() {
                                String::new()
                            } else {
                                format!("in the site's profile_dirs {profile_dirs:?} or ")
                            },
                            crate::profile::builtin_profiles().collect::<Vec<_>>()
                        ),
                    );
                    None
                }
            })
            .clone();
        let Some(loaded) = loaded else { continue };
        let profile = &loaded.profile;
        let max_registers = limit(
            &d.max_registers,
            profile.max_registers,
            &format!("{label}.max_registers"),
            &mut diag,
        );
        let max_gap = match &d.max_gap {
            Some(g) if (0..=124).contains(g.get_ref()) => *g.get_ref() as u16,
            Some(g) => {
                diag.error(
                    Some(g.span()),
                    format!("{label}.max_gap"),
                    "use 0..=124 registers",
                );
                0
            }
            None => DEFAULT_MAX_GAP,
        };
        let points = device_points(&loaded, d, &label, &mut diag);
        for p in points
            .iter()
            .filter(|p| !p.kind.is_bit() && p.width() > max_registers)
        {
            diag.error(
                d.max_registers.as_ref().map(|m| m.span()).or(Some(d.id.span())),
                format!("{label}.max_registers"),
                format!("point \"{}\" spans {} registers but this device reads at most {max_registers} at once", p.id, p.width()),
            );
        }
        let Some(bus) = bus else { continue };
        devices.push(Device {
            id,
            name: d.name.clone(),
            bus,
            unit,
            profile: Arc::clone(profile),
            hazard_source,
            poll,
            poll_in_alarm,
            timeout,
            max_registers,
            max_bits: profile.max_bits,
            max_gap,
            points,
        });
    }

    let derived = super::derived::resolve_derived(&devices, &raw.devices, &mut diag);
    check_linkage(&devices, &derived, &raw.devices, &mut diag);
    if let Some(b) = &site.ack_button {
        check_input(
            &devices,
            b,
            Some(raw.site.id.span()),
            "site.ack_button".into(),
            &mut diag,
        );
    }
    let mut errors = foreign;
    errors.extend(diag.errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    // The hash covers the site file and everything its devices took from profiles (a
    // custom profile edited under a running gateway changes it too).
    let mut hashed = source.text.clone().into_bytes();
    hashed.extend_from_slice(format!("{devices:?}").as_bytes());
    Ok(SiteConfig {
        path: source.path.clone(),
        hash: fnv1a_hex(&hashed),
        site,
        uplink,
        store,
        metrics,
        hazard_sources,
        buses,
        devices,
        derived,
    })
}

/// A linkage output must name a device of this site and a point it can write: a coil or
/// a holding register.
fn check_linkage(
    devices: &[Device],
    derived: &[super::derived::Derived],
    raw: &[RawDevice],
    diag: &mut Diagnostics,
) {
    // Rules of several points may drive one output (it is operated while any is); they
    // must agree on what operated and released mean for it.
    let mut values: HashMap<(&str, &str), (f64, f64)> = HashMap::new();
    let register_alarms = devices.iter().flat_map(|d| {
        d.points
            .iter()
            .filter_map(move |p| Some((d, "points", p.id.as_str(), p.alarm.as_ref()?)))
    });
    let derived_alarms = derived.iter().filter_map(|x| {
        Some((
            &devices[x.device],
            "derived",
            x.id.as_str(),
            x.alarm.as_ref()?,
        ))
    });
    for (d, table, point, alarm) in register_alarms.chain(derived_alarms) {
        let span = raw
            .iter()
            .find(|r| r.id.get_ref() == &d.id)
            .map(|r| r.id.span());
        if let Some(input) = alarm.calibration.as_ref().and_then(|c| c.input.as_ref()) {
            let field = format!(
                "device \"{}\".{table}.{point}.alarm.calibration.input",
                d.id
            );
            check_input(devices, input, span.clone(), field, diag);
        }
        for l in &alarm.linkage {
            let field = format!("device \"{}\".{table}.{point}.alarm.linkage", d.id);
            let Some(target) = devices.iter().find(|t| t.id == l.device) else {
                diag.error(
                    span.clone(),
                    field,
                    format!("no device \"{}\" to write to", l.device),
                );
                continue;
            };
            match target.points.iter().find(|t| t.id == l.point) {
                    None => diag.error(span.clone(), field.clone(), format!("device \"{}\" has no point \"{}\"", l.device, l.point)),
                    Some(t) if !matches!(t.kind, crate::RegisterKind::Coil | crate::RegisterKind::Holding) => {
                        diag.error(span.clone(), field.clone(), format!("\"{}.{}\" is a {} and cannot be written; use a coil or a holding register", l.device, l.point, t.kind.name()))
                    }
                    Some(_) => {}
                }
            match values.entry((l.device.as_str(), l.point.as_str())) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((l.on, l.off));
                }
                std::collections::hash_map::Entry::Occupied(o) if *o.get() != (l.on, l.off) => {
                    diag.error(
                            span.clone(),
                            field.clone(),
                            format!(
                                "\"{}.{}\" is driven by another rule with other values (on {}, off {}); rules on one output must agree",
                                l.device, l.point, o.get().0, o.get().1
                            ),
                        );
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
            }
            let inputs = l
                .reset
                .iter()
                .map(|r| ("reset", r))
                .chain(l.feedback.iter().map(|f| ("feedback", &f.at)));
            for (what, at) in inputs {
                check_input(devices, at, span.clone(), format!("{field}.{what}"), diag);
            }
        }
    }
}

/// An input the alarm settings read (a reset button, a limit switch, a calibration key
/// switch) must be a value the gateway reads.
fn check_input(
    devices: &[Device],
    at: &crate::alarm::PointAt,
    span: Option<std::ops::Range<usize>>,
    field: String,
    diag: &mut Diagnostics,
) {
    let found = devices
        .iter()
        .find(|t| t.id == at.device)
        .and_then(|t| t.points.iter().find(|q| q.id == at.point));
    match found {
        None => diag.error(
            span,
            field,
            format!("no point \"{}.{}\" to read", at.device, at.point),
        ),
        Some(q) if !q.publish => diag.error(
            span,
            field,
            format!(
                "\"{}.{}\" is a helper register that is not read as a value",
                at.device, at.point
            ),
        ),
        Some(_) => {}
    }
}

/// The most unused registers a read bridges unless the site says otherwise. Within it, the
/// gateway bridges a gap only where one read costs less than two on that link.
pub const DEFAULT_MAX_GAP: u16 = 16;

fn device_points(
    loaded: &LoadedProfile,
    d: &RawDevice,
    label: &str,
    diag: &mut Diagnostics,
) -> Arc<[crate::profile::Point]> {
    let mut raws: Vec<RawPoint> = loaded.raw_points.clone();
    let at: Range<usize> = d.id.span();
    let mut overridden = false;
    let mut touched = vec![false; raws.len()];
    // The device's report setting replaces the profile's; a point's own override wins.
    // Checked once here (a % deadband is judged again per point, against its range).
    if let Some(report) = &d.report {
        let before = diag.errors.len();
        crate::profile::report::resolve(Some(report), Some(100.0), true, diag, label);
        if diag.errors.len() == before {
            for raw in &mut raws {
                raw.report = Some(report.clone());
            }
            overridden = true;
        }
    }
    for (key, over) in &d.points {
        match raws
            .iter()
            .position(|p| p.id.as_ref().map(|i| i.get_ref()) == Some(key.get_ref()))
        {
            Some(i) => {
                if over.id.is_some() {
                    diag.error(
                        over.id.as_ref().map(|s| s.span()),
                        format!("{label}.points.{}.id", key.get_ref()),
                        "a point's id is its key; it cannot be renamed",
                    );
                }
                raws[i] = raws[i].overridden_by(over, &key.span());
                touched[i] = true;
                overridden = true;
            }
            None => {
                let known: Vec<&str> = loaded
                    .profile
                    .points
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect();
                diag.error(
                    Some(key.span()),
                    format!("{label}.points.{}", key.get_ref()),
                    format!(
                        "profile \"{}\" has no point \"{}\"; its points: {known:?}",
                        loaded.profile.model,
                        key.get_ref()
                    ),
                );
            }
        }
    }
    if !overridden {
        return Arc::clone(&loaded.profile.points);
    }
    // The untouched points' spans are offsets into the profile's text; an error about them
    // (an override moved a point onto one) is reported at the device in the site file.
    for (raw, _) in raws.iter_mut().zip(&touched).filter(|(_, t)| !**t) {
        *raw = raw.overridden_by(&RawPoint::default(), &at);
    }
    let tables = Tables {
        status: &loaded.profile.status_tables,
    };
    resolve_points(&raws, &tables, diag, &format!("{label}.points")).into()
}

fn limit(v: &Option<toml::Spanned<i64>>, max: u16, field: &str, diag: &mut Diagnostics) -> u16 {
    match v {
        Some(s) if (1..=max as i64).contains(s.get_ref()) => *s.get_ref() as u16,
        Some(s) => {
            diag.error(
                Some(s.span()),
                field,
                format!(
                    "{} is not allowed; the profile allows at most {max}",
                    s.get_ref()
                ),
            );
            max
        }
        None => max,
    }
}

fn checked_id(id: &toml::Spanned<String>, field: &str, diag: &mut Diagnostics) -> String {
    if !valid_id(id.get_ref()) {
        diag.error(
            Some(id.span()),
            field,
            format!("\"{}\" is not a valid id; {ID_RULE}", id.get_ref()),
        );
    }
    id.get_ref().clone()
}

fn checked_timeout(
    t: &toml::Spanned<crate::serde_types::Interval>,
    field: &str,
    diag: &mut Diagnostics,
) -> Duration {
    let v = t.get_ref().0;
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&v) {
        diag.error(
            Some(t.span()),
            field,
            format!("{} is outside 10ms ..= 60s", format_duration(v)),
        );
    }
    v
}

fn checked_port(p: &toml::Spanned<i64>, field: &str, diag: &mut Diagnostics) -> u16 {
    match u16::try_from(*p.get_ref()) {
        Ok(port) if port > 0 => port,
        _ => {
            diag.error(
                Some(p.span()),
                field,
                format!("{} is not a TCP port; use 1..=65535", p.get_ref()),
            );
            0
        }
    }
}

fn resolve_bus(b: &RawBus, id: &str, base: &Path, diag: &mut Diagnostics) -> Option<Bus> {
    let label = format!("bus \"{id}\"");
    let given = [b.tcp.is_some(), b.rtu.is_some(), b.rtu_over_tcp.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if given != 1 {
        diag.error(
            Some(b.id.span()),
            label.clone(),
            "give exactly one of `tcp`, `rtu` or `rtu_over_tcp`",
        );
        return None;
    }
    let link = if let Some(t) = &b.tcp {
        Link::Tcp {
            host: t.host.clone(),
            port: checked_port(&t.port, &format!("{label}.tcp.port"), diag),
        }
    } else if let Some(t) = &b.rtu_over_tcp {
        Link::RtuOverTcp {
            host: t.host.clone(),
            port: checked_port(&t.port, &format!("{label}.rtu_over_tcp.port"), diag),
        }
    } else {
        let s = b.rtu.as_ref()?;
        let baud = *s.baud.get_ref();
        if !BAUDS.contains(&baud) {
            diag.error(
                Some(s.baud.span()),
                format!("{label}.rtu.baud"),
                format!("{baud} is not a standard baud rate; use one of {BAUDS:?}"),
            );
        }
        let data_bits = s.data_bits.as_ref().map(|d| (*d.get_ref(), d.span()));
        if let Some((bits, span)) = &data_bits {
            if !(7..=8).contains(bits) {
                diag.error(
                    Some(span.clone()),
                    format!("{label}.rtu.data_bits"),
                    "use 7 or 8",
                );
            }
        }
        let stop_bits = s.stop_bits.as_ref().map(|d| (*d.get_ref(), d.span()));
        if let Some((bits, span)) = &stop_bits {
            if !(1..=2).contains(bits) {
                diag.error(
                    Some(span.clone()),
                    format!("{label}.rtu.stop_bits"),
                    "use 1 or 2",
                );
            }
        }
        Link::Rtu(SerialLine {
            port: base.join(&s.port),
            baud: baud.clamp(1200, 230400) as u32,
            parity: s.parity,
            data_bits: data_bits.map(|d| d.0.clamp(7, 8) as u8).unwrap_or(8),
            stop_bits: stop_bits.map(|d| d.0.clamp(1, 2) as u8).unwrap_or(1),
        })
    };
    let timeout = b
        .timeout
        .as_ref()
        .map(|t| checked_timeout(t, &format!("{label}.timeout"), diag))
        .unwrap_or(DEFAULT_TIMEOUT);
    let gap = b
        .gap
        .as_ref()
        .map(|g| g.get_ref().0)
        .unwrap_or(Duration::ZERO);
    if gap > Duration::from_secs(1) {
        diag.error(
            b.gap.as_ref().map(|g| g.span()),
            format!("{label}.gap"),
            "a gap over 1s between frames wastes the line; use 0ms ..= 1s",
        );
    }
    Some(Bus {
        id: id.to_string(),
        link,
        timeout,
        gap,
    })
}
