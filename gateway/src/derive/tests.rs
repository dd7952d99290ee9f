//! Derived points on a site parsed from TOML, fed readings as the pollers make them.

use super::*;
use firmware_config::error::SourceText;

const SITE: &str = r#"
[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15030 }

[[device]]
id = "WL-01"
bus = "tcp-1"
unit = 1
profile = "tailings-pond-level"
poll = "10s"

[device.derived.FREEBOARD]
difference = [316.0, "WATER_LEVEL"]

[[device]]
id = "RG-01"
bus = "tcp-1"
unit = 10
profile = "rain-gauge"
poll = "10s"

[device.derived.RAIN_1H]
total = { of = "RAIN_TOTAL", over = "1h" }

[device.derived.RAIN_1H_FROM_INTENSITY]
total = { of = "RAIN_INTENSITY", over = "1h" }

[[device]]
id = "GN-01"
bus = "tcp-1"
unit = 11
profile = "gnss-displacement"
poll = "30s"

[device.derived.DISP_H]
magnitude = ["DISP_E", "DISP_N"]

[device.derived.DISP_H_RATE]
rate = { of = "DISP_H", over = "1h", per = "1d" }
"#;

fn site() -> SiteConfig {
    firmware_config::site::parse_site(&SourceText::new("/tmp/site.toml", SITE))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn reading(device: &str, point: &str, ts: i64, value: f64) -> Reading {
    Reading {
        device: device.into(),
        point: point.into(),
        ts,
        value: Some(Value::Number(value)),
        unit: None,
        quality: Quality::Good,
        flags: vec![],
    }
}

/// Runs one acquisition at `s` seconds; returns the derived readings it adds.
fn step(d: &mut Deriver, s: i64, inputs: Vec<Reading>) -> Vec<Reading> {
    let mut batch = inputs;
    let n = batch.len();
    d.apply(s * 1000, &mut batch);
    batch.split_off(n)
}

fn number(r: &Reading) -> f64 {
    r.value.as_ref().and_then(Value::as_f64).unwrap()
}

#[test]
fn units_and_order_come_from_the_config() {
    let site = site();
    let units: Vec<(&str, Option<&str>)> = site
        .derived
        .iter()
        .map(|d| (d.id.as_str(), d.unit.as_deref()))
        .collect();
    assert!(units.contains(&("FREEBOARD", Some("m"))), "{units:?}");
    assert!(units.contains(&("RAIN_1H", Some("mm"))), "{units:?}");
    assert!(
        units.contains(&("RAIN_1H_FROM_INTENSITY", Some("mm"))),
        "{units:?}"
    );
    assert!(units.contains(&("DISP_H", Some("mm"))), "{units:?}");
    assert!(units.contains(&("DISP_H_RATE", Some("mm/d"))), "{units:?}");
    let at = |id: &str| site.derived.iter().position(|d| d.id == id).unwrap();
    assert!(
        at("DISP_H") < at("DISP_H_RATE"),
        "a derived input comes first"
    );
}

#[test]
fn freeboard_is_crest_minus_pond_level() {
    let mut d = Deriver::new(&site(), None);
    let out = step(&mut d, 0, vec![reading("WL-01", "WATER_LEVEL", 5, 312.4)]);
    assert_eq!(out.len(), 1);
    assert_eq!((&*out[0].device, &*out[0].point), ("WL-01", "FREEBOARD"));
    assert!((number(&out[0]) - 3.6).abs() < 1e-9);
    assert_eq!(out[0].unit.as_deref(), Some("m"));
    assert_eq!(out[0].ts, 5);
    assert!(out[0].quality.is_good());
    // Nothing of its inputs in a batch: nothing derived.
    assert!(step(&mut d, 1, vec![reading("WL-01", "AIR_GAP", 5, 12.0)]).is_empty());
}

#[test]
fn a_bad_or_flagged_input_carries_over() {
    let mut d = Deriver::new(&site(), None);
    let mut bad = reading("WL-01", "WATER_LEVEL", 5, 0.0);
    bad.value = None;
    bad.quality = Quality::bad(Reason::Timeout, "no reply");
    let out = step(&mut d, 0, vec![bad]);
    assert_eq!(out[0].value, None);
    assert_eq!(out[0].quality.reason(), Some(Reason::Timeout));
    let mut calibrating = reading("GN-01", "DISP_E", 5, 3.0);
    calibrating.flags = vec![Flag::Calibration, Flag::StuckValue];
    let out = step(
        &mut d,
        1,
        vec![calibrating, reading("GN-01", "DISP_N", 5, 4.0)],
    );
    let h = out.iter().find(|r| &*r.point == "DISP_H").unwrap();
    assert!((number(h) - 5.0).abs() < 1e-9);
    assert_eq!(
        h.flags,
        [Flag::Calibration],
        "only flags that withhold judgement"
    );
}

#[test]
fn a_counter_total_covers_the_window_and_says_when_it_does_not() {
    let mut d = Deriver::new(&site(), None);
    let total = |d: &mut Deriver, s: i64, counter: f64| {
        let out = step(
            d,
            s,
            vec![reading("RG-01", "RAIN_TOTAL", s * 1000, counter)],
        );
        out.into_iter().find(|r| &*r.point == "RAIN_1H").unwrap()
    };
    // 0.2 mm every 10 s for 2 h: 72 mm per hour.
    let mut last = None;
    for i in 0..=720 {
        let r = total(&mut d, i * 10, 1000.0 + 0.2 * i as f64);
        if i == 180 {
            // Half an hour in: 36 mm so far, a lower bound, said to be partial.
            assert!((number(&r) - 36.0).abs() < 0.01, "{r:?}");
            assert_eq!(r.quality.reason(), Some(Reason::PartialWindow), "{r:?}");
        }
        last = Some(r);
    }
    let r = last.unwrap();
    assert!((number(&r) - 72.0).abs() < 1.5, "{r:?}");
    assert!(r.quality.is_good(), "{r:?}");
    // A counter reset loses one step and marks the hour partial.
    let r = total(&mut d, 7210, 3.0);
    assert_eq!(r.quality.reason(), Some(Reason::PartialWindow), "{r:?}");
}

#[test]
fn an_intensity_integrates_to_a_total() {
    let mut d = Deriver::new(&site(), None);
    let mut last = None;
    // 36 mm/h for 1 h 10 min, sampled every 10 s.
    for i in 0..=420 {
        let out = step(
            &mut d,
            i * 10,
            vec![reading("RG-01", "RAIN_INTENSITY", i * 10_000, 36.0)],
        );
        last = out
            .into_iter()
            .find(|r| &*r.point == "RAIN_1H_FROM_INTENSITY");
    }
    let r = last.unwrap();
    assert!((number(&r) - 36.0).abs() < 0.5, "{r:?}");
    assert!(r.quality.is_good(), "{r:?}");
}

#[test]
fn displacement_rate_per_day_from_the_magnitude() {
    let mut d = Deriver::new(&site(), None);
    let mut rate = None;
    // East creeps 1 mm per hour, north stays: 24 mm/d.
    for i in 0..=240 {
        let s = i * 30;
        let e = 10.0 + s as f64 / 3600.0;
        let out = step(
            &mut d,
            s,
            vec![
                reading("GN-01", "DISP_E", s * 1000, e),
                reading("GN-01", "DISP_N", s * 1000, 0.0),
            ],
        );
        rate = out
            .into_iter()
            .find(|r| &*r.point == "DISP_H_RATE")
            .or(rate);
    }
    let r = rate.unwrap();
    assert!((number(&r) - 24.0).abs() < 0.5, "{r:?}");
    assert_eq!(r.unit.as_deref(), Some("mm/d"));
    assert!(r.quality.is_good(), "{r:?}");
}

#[test]
fn a_reload_keeps_the_windows_of_unchanged_points() {
    let site = site();
    let mut d = Deriver::new(&site, None);
    for i in 0..=400 {
        step(
            &mut d,
            i * 10,
            vec![reading("RG-01", "RAIN_TOTAL", i * 10_000, i as f64 * 0.2)],
        );
    }
    let mut d = Deriver::new(&site, Some(d));
    let out = step(
        &mut d,
        4010,
        vec![reading("RG-01", "RAIN_TOTAL", 4_010_000, 401.0 * 0.2)],
    );
    let r = out.iter().find(|r| &*r.point == "RAIN_1H").unwrap();
    assert!(r.quality.is_good(), "the hour is still covered: {r:?}");
}
