//! Every shipped profile and every example site loads, and what they describe is sane: the
//! simulated "normal" values are in range, encodable in their registers, and read as good.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use firmware_config::codec::DataType;
use firmware_config::profile::{builtin_profiles, find_profile, CodeQuality, Point, StatusTable};
use firmware_config::site::Link;
use firmware_config::{load_site, RegisterKind, SiteConfig};

/// The models the examples, the simulator and the gateway's tests rely on.
const REQUIRED_MODELS: &[&str] = &[
    "gas-detector-4ch",
    "gas-transmitter-4-20ma",
    "pressure-transmitter-f32",
    "radar-level-gauge",
    "temperature-transmitter",
    "tailings-pond-level",
    "dry-beach-meter",
    "piezometer",
    "gnss-displacement",
    "rain-gauge",
    "mine-methane-sensor",
    "relay-output-module",
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.unwrap().path())
        // central.toml configures hazingest, not a site
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("central.toml"))
        .collect();
    files.sort();
    files
}

fn load_example(name: &str) -> SiteConfig {
    let path = examples_dir().join(name);
    load_site(&path).unwrap_or_else(|e| panic!("{} does not load:\n{e}", path.display()))
}

/// Checks the simulated normal state of a device's points (profile defaults, or a site's
/// overrides): the simulator must be able to serve it and the gateway must read it as a
/// healthy, non-alarming plant.
fn check_normal_state(
    what: &str,
    points: &[Point],
    status_tables: &BTreeMap<String, StatusTable>,
    unit_codes: &BTreeMap<u16, String>,
) {
    for p in points {
        let at = format!("{what} point {}", p.id);
        let sim = p.simulate;
        assert!(
            sim.normal.is_finite() && sim.noise >= 0.0,
            "{at}: bad simulate {sim:?}"
        );
        if p.kind.is_bit() || matches!(p.ty, DataType::Bit(_)) {
            assert!(
                sim.normal == 0.0 || sim.normal == 1.0,
                "{at}: a bit is 0 or 1, not {}",
                sim.normal
            );
            continue;
        }
        if let Some(r) = p.range {
            assert!(
                r.contains(sim.normal),
                "{at}: normal {} outside range {r:?}",
                sim.normal
            );
            // Noise (±4σ) and the daily cycle must not flap a healthy value out of range,
            // unless an unsigned register clamps it at exactly the range's low end.
            let swing = 4.0 * sim.noise + sim.daily.abs();
            let unsigned = matches!(p.ty, DataType::U16 | DataType::U32 | DataType::U64);
            let clamps_at_low = unsigned && p.to_raw(r.low, Some(0)).abs() < 1e-9;
            assert!(
                sim.normal - swing >= r.low || clamps_at_low,
                "{at}: normal {} - {swing} (4σ + daily) falls below range {r:?}",
                sim.normal
            );
            assert!(
                sim.normal + swing <= r.high,
                "{at}: normal {} + {swing} (4σ + daily) rises above range {r:?}",
                sim.normal
            );
        }
        // The raw value the simulator has to put into the registers must fit their type.
        let decimals = p.decimals_from.as_ref().map(|h| {
            let d = points[h.index].simulate.normal;
            assert!(
                (0.0..=4.0).contains(&d) && d.fract() == 0.0,
                "{at}: decimals register simulates {d}"
            );
            d as u8
        });
        let raw = p.to_raw(sim.normal, decimals).round();
        let fits = match p.ty {
            DataType::U16 => (0.0..=u16::MAX as f64).contains(&raw),
            DataType::I16 => (i16::MIN as f64..=i16::MAX as f64).contains(&raw),
            DataType::U32 => (0.0..=u32::MAX as f64).contains(&raw),
            DataType::I32 => (i32::MIN as f64..=i32::MAX as f64).contains(&raw),
            DataType::U64 => raw >= 0.0,
            _ => true,
        };
        assert!(
            fits,
            "{at}: normal {} needs raw {raw}, which a {} cannot hold",
            sim.normal,
            p.ty.name()
        );
        if let Some(span) = p.loop_span {
            let ma = span.current_for(sim.normal);
            assert!(
                (4.0..=20.0).contains(&ma),
                "{at}: normal {} is {ma} mA, not a healthy loop",
                sim.normal
            );
        }
        // A status register must simulate a code that says "good".
        if let Some(table) = &p.status_codes {
            let code = sim.normal as u16;
            let meaning = status_tables[table].get(&code).unwrap_or_else(|| {
                panic!("{at}: simulated status code {code} is not in table {table}")
            });
            assert_eq!(
                meaning.quality,
                CodeQuality::Good,
                "{at}: simulated status {code} is {meaning:?}"
            );
        }
        // A unit code register must simulate the code of the unit the point says it has.
        if let Some(h) = &p.unit_from {
            let code = points[h.index].simulate.normal as u16;
            let unit = unit_codes
                .get(&code)
                .unwrap_or_else(|| panic!("{at}: simulated unit code {code} is not in unit_codes"));
            assert_eq!(
                Some(unit),
                p.unit.as_ref(),
                "{at}: unit code {code} says {unit}, the point says {:?}",
                p.unit
            );
        }
    }
}

#[test]
fn every_builtin_profile_parses_and_is_sane() {
    let names: Vec<&str> = builtin_profiles().collect();
    for required in REQUIRED_MODELS {
        assert!(
            names.contains(required),
            "no built-in profile {required}; have {names:?}"
        );
    }
    for name in names {
        let loaded = match find_profile(name, &[]) {
            Some(Ok(p)) => p,
            Some(Err(e)) => panic!("built-in profile {name} does not parse:\n{e}"),
            None => panic!("built-in profile {name} listed but not found"),
        };
        let profile = &loaded.profile;
        assert_eq!(profile.model, name);
        assert!(!profile.description.is_empty(), "{name}: no description");
        assert!(
            loaded.source.text.starts_with('#'),
            "{name}: the file should open with a comment on the vendor map"
        );
        assert!(!profile.points.is_empty());
        for raw in &loaded.raw_points {
            let id = raw.id.as_ref().map(|i| i.get_ref().as_str()).unwrap_or("?");
            assert!(raw.name.is_some(), "{name}: point {id} has no name");
            assert!(raw.simulate.is_some(), "{name}: point {id} has no simulate");
        }
        check_normal_state(
            &format!("profile {name}"),
            &profile.points,
            &profile.status_tables,
            &profile.unit_codes,
        );
    }
}

#[test]
fn specific_profiles_say_what_the_gateway_expects() {
    let get = |m: &str| find_profile(m, &[]).unwrap().unwrap().profile;

    let gt = get("gas-transmitter-4-20ma");
    let gas = gt
        .points
        .iter()
        .find(|p| p.loop_span.is_some())
        .expect("a 4-20 mA point");
    assert_eq!((gas.kind, gas.ty), (RegisterKind::Input, DataType::U16));
    assert!((gas.scale - 0.001).abs() < 1e-12, "µA -> mA");
    assert_eq!(
        gas.to_raw(0.0, None).round(),
        4000.0,
        "0 %LEL is 4 mA = 4000 µA"
    );
    assert_eq!(gas.to_raw(100.0, None).round(), 20000.0);

    let pt = get("pressure-transmitter-f32");
    let p = pt.point("PRESSURE").unwrap();
    assert_eq!(
        (p.ty, p.order.name(), p.unit.as_deref()),
        (DataType::F32, "cdab", Some("MPa"))
    );

    let gnss = get("gnss-displacement");
    for axis in ["DISP_E", "DISP_N", "DISP_U"] {
        let p = gnss.point(axis).unwrap();
        assert_eq!(
            (p.kind, p.ty, p.width()),
            (RegisterKind::Holding, DataType::F64, 4)
        );
        assert_eq!(p.status_from.as_ref().map(|s| s.id.as_str()), Some("FIX"));
    }
    let fix = &gnss.status_tables["fix"];
    assert_eq!(fix[&4].quality, CodeQuality::Good);
    assert_eq!(fix[&5].quality, CodeQuality::Uncertain);
    assert_eq!(
        (fix[&0].quality, fix[&1].quality),
        (CodeQuality::Bad, CodeQuality::Bad)
    );

    let rain = get("rain-gauge");
    let total = rain.point("RAIN_TOTAL").unwrap();
    assert_eq!(total.ty, DataType::U32);
    assert!(
        total.simulate.per_second > 0.0,
        "the tip counter must count up"
    );
    assert!((total.scale - 0.2).abs() < 1e-12);

    let relay = get("relay-output-module");
    let coils = relay
        .points
        .iter()
        .filter(|p| p.kind == RegisterKind::Coil)
        .count();
    let inputs = relay
        .points
        .iter()
        .filter(|p| p.kind == RegisterKind::Discrete)
        .count();
    assert_eq!((coils, inputs), (8, 8));
    assert!(relay.point("DO1").is_some() && relay.point("DO8").is_some());

    let ch4 = get("mine-methane-sensor").point("CH4").unwrap().clone();
    assert_eq!((ch4.ty, ch4.unit.as_deref()), (DataType::U16, Some("%CH4")));
    assert!((ch4.scale - 0.01).abs() < 1e-12);
}

#[test]
fn every_example_site_loads() {
    let files = example_files();
    assert!(
        files.len() >= 3,
        "expected the tank farm, tailings dam and mine examples, got {files:?}"
    );
    for path in files {
        let site =
            load_site(&path).unwrap_or_else(|e| panic!("{} does not load:\n{e}", path.display()));
        assert!(!site.devices.is_empty(), "{}: no devices", path.display());
        for d in &site.devices {
            check_normal_state(
                &format!("{} device {}", path.display(), d.id),
                &d.points,
                &d.profile.status_tables,
                &d.profile.unit_codes,
            );
        }
        // Examples never carry secrets, and their simulated ports stay in the demo range.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("password =")),
            "{}: inline password",
            path.display()
        );
        for bus in &site.buses {
            if let Link::Tcp { port, .. } | Link::RtuOverTcp { port, .. } = &bus.link {
                assert!(
                    (15020..=15049).contains(port),
                    "{}: bus {} uses port {port}",
                    path.display(),
                    bus.id
                );
            }
        }
    }
}

#[test]
fn tank_farm_facts() {
    let site = load_example("tank-farm.toml");
    assert_eq!(site.site.id, "HB-420100-0001");
    assert_eq!(site.site.gateway, "gw-01");
    assert!(site.uplink.as_ref().unwrap().password.is_none());

    // The demo's leak scenario ramps GD-101 CH1 on the RS-485 line.
    let gd = site.device("GD-101").expect("GD-101");
    assert_eq!(gd.unit, 1);
    assert_eq!(gd.profile.model, "gas-detector-4ch");
    let Link::Rtu(line) = &site.buses[gd.bus].link else {
        panic!(
            "GD-101 must be on an RTU bus, is on {:?}",
            site.buses[gd.bus].link
        )
    };
    assert_eq!(line.port, Path::new("/tmp/hazsim/tank-farm-rs485-1"));
    assert_eq!(line.baud, 9600);
    let ch1 = gd.points.iter().find(|p| p.id == "CH1").unwrap();
    assert_eq!(ch1.unit.as_deref(), Some("%LEL"));
    assert_eq!(site.hazard_sources[gd.hazard_source.unwrap()].grade, 2);

    // The per-device override of a toxic channel.
    let gd3 = site.device("GD-103").unwrap();
    let ch3 = gd3.points.iter().find(|p| p.id == "CH3").unwrap();
    assert_eq!(ch3.unit.as_deref(), Some("ppm"));
    assert_eq!(ch3.range.map(|r| (r.low, r.high)), Some((0.0, 100.0)));
    assert_eq!(
        ch3.status_from.as_ref().map(|s| s.id.as_str()),
        Some("CH3_STATUS"),
        "overrides keep the helpers"
    );
    let untouched = site
        .device("GD-102")
        .unwrap()
        .points
        .iter()
        .find(|p| p.id == "CH3")
        .unwrap()
        .clone();
    assert_eq!(
        untouched.unit.as_deref(),
        Some("%LEL"),
        "an override is per device"
    );

    let models: Vec<&str> = site
        .devices
        .iter()
        .map(|d| d.profile.model.as_str())
        .collect();
    for m in [
        "pressure-transmitter-f32",
        "radar-level-gauge",
        "temperature-transmitter",
        "gas-transmitter-4-20ma",
        "relay-output-module",
    ] {
        assert!(models.contains(&m), "tank farm has no {m}");
        let d = site.devices.iter().find(|d| d.profile.model == m).unwrap();
        assert!(
            matches!(site.buses[d.bus].link, Link::Tcp { .. }),
            "{m} should be on a TCP bus"
        );
    }
    assert!(site.hazard_sources.iter().any(|h| h.grade == 3));
}

#[test]
fn tailings_dam_facts() {
    let site = load_example("tailings-dam.toml");
    assert_eq!(site.site.id, "HB-420300-0007");
    let dtu = site
        .buses
        .iter()
        .position(|b| matches!(b.link, Link::RtuOverTcp { port: 15031, .. }))
        .expect("a DTU bus");
    assert!(
        site.devices_on(dtu).count() >= 3,
        "several units behind the DTU"
    );
    assert!(site
        .buses
        .iter()
        .any(|b| matches!(b.link, Link::Tcp { port: 15030, .. })));
    for m in [
        "tailings-pond-level",
        "dry-beach-meter",
        "piezometer",
        "gnss-displacement",
        "rain-gauge",
    ] {
        assert!(
            site.devices.iter().any(|d| d.profile.model == m),
            "tailings dam has no {m}"
        );
    }
    assert!(
        site.devices
            .iter()
            .filter(|d| d.profile.model == "piezometer")
            .count()
            >= 2
    );
    for d in &site.devices {
        assert!(
            d.poll >= Duration::from_secs(10),
            "{}: demo polls of a dam are 10 s or more",
            d.id
        );
        assert!(
            d.hazard_source.is_some(),
            "{}: every dam sensor belongs to the dam",
            d.id
        );
    }
}

#[test]
fn mine_facts() {
    let site = load_example("mine.toml");
    let methane: Vec<_> = site
        .devices
        .iter()
        .filter(|d| d.profile.model == "mine-methane-sensor")
        .collect();
    assert!(methane.len() >= 3);
    for pos in ["T1", "T2", "T3"] {
        assert!(
            methane.iter().any(|d| d.id.contains(pos)),
            "no methane sensor at {pos}"
        );
    }
    for d in &methane {
        assert!(
            d.poll <= Duration::from_secs(2),
            "{}: methane power cut must act within 2 s",
            d.id
        );
    }
    let rtu = site
        .buses
        .iter()
        .find_map(|b| match &b.link {
            Link::Rtu(l) => Some(l),
            _ => None,
        })
        .expect("an RS-485 line");
    assert_eq!(
        (rtu.port.as_path(), rtu.baud),
        (Path::new("/tmp/hazsim/mine-rs485-1"), 19200)
    );
    assert!(site
        .devices
        .iter()
        .any(|d| d.profile.model == "relay-output-module"));
}
